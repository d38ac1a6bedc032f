// The LIF layer of lib.snn as two fused CPU kernels: all T steps of a neuron in one pass,
// the 2x2 average pool and the spike count of each neuron written in the same pass.
//
//     mem[t] = beta * mem[t-1] + cur[t]               (mem[-1] = 0)
//     spk[t] = H(mem[t] - threshold)
//     mem[t] = mem[t] - spk[t] * threshold              (reset by subtraction)
//     mem[t] = mem[t] * (1 - spk[t])                     (or, zero_reset, to zero)
//
// forward (cur -> out, count): out[t] = spk[t], or its 2x2 average pool; count = sum_t spk[t].
// backward: with s[t] = surrogate'(mem[t] - threshold) and g[t] = dL/dspk[t]
// (= dL/dout[t] pooled back, / 4, + dL/dcount),
//
//     dL/dmem[t] = g[t] * s[t] + beta * dL/dmem[t+1] * (1 - threshold * s[t])
//
// where the reset factor is 1 when the reset is detached, and (1 - spk[t]) for the zero reset
// (always detached; its spikes are recomputed with the membranes); dL/dcur[t] = dL/dmem[t], summed over
// t when cur is the same at every step (direct encoding). Nothing is saved between the two: the
// backward recomputes the membranes from cur (one read of cur instead of a write and a read of
// s), plane by plane in a buffer that stays in cache.
//
// Every operation is the one lib.snn's PyTorch path does, in the same order and rounding, so
// spikes, pooled spikes and counts are the same bit for bit, and so are the gradients on the
// machines tested (PyTorch's vectorised add with alpha is a fused multiply-add, hence std::fma
// here; its sum over time is the cascade of at::native's multi_row_sum, mirrored in
// cascade_sum). Compile with -ffp-contract=off: a contracted beta * mem + cur would round once
// instead of twice and change spikes.
//
// A "plane" is what one task owns: some channels of one sample (pooled layers, S = k * H * W) or
// one sample's neurons (S = N). Planes are independent, so they are split across threads with
// at::parallel_for (torch.set_num_threads applies).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

enum Surrogate : int64_t { PIECEWISE_LINEAR = 0, FAST_SIGMOID = 1 };

struct Lif {
  double beta, threshold, gamma, scale;
  int64_t surrogate;
  bool detach_reset, zero_reset;
};

struct Shape {
  int64_t T, P, S;  // time steps, planes, neurons per plane
  int64_t H, W;     // a channel's height and width when pooled (S = k * H * W), else 0
  bool pool, broadcast;  // out is pooled 2x2; cur has no time axis (the same at every step)
};

#define INLINE inline __attribute__((always_inline))

// lib.snn.piecewise_linear_grad / fast_sigmoid_grad, operation for operation
template <typename scalar_t, int64_t kSurrogate>
INLINE scalar_t surrogate_grad(scalar_t x, scalar_t gamma, scalar_t scale) {
  scalar_t y = std::abs(x);
  if (kSurrogate == PIECEWISE_LINEAR) {
    y = y / scale;
    y = -y;
    y = y + scalar_t(1);
    y = y < scalar_t(0) ? scalar_t(0) : y;  // clamp(min=0)
  } else {
    y = y * scale;
    y = y + scalar_t(1);
    y = y * y;
    y = scalar_t(1) / y;
  }
  return y * gamma;
}

// One time step of one plane: mem (S) advances by c (S); the spikes go to spk, are added to
// count, and the surrogate's derivative goes to sg, each where its flag asks for it. Flags are
// template arguments and the pointers do not alias, so each combination is one vector loop.
// kZero: the zero reset, m * (1 - fired), which is m or +0 exactly, as PyTorch's mul.
template <typename scalar_t, bool kZero, bool kSpk, bool kCount, int64_t kSurrogate>
INLINE void lif_step(const scalar_t* __restrict__ c, scalar_t* __restrict__ mem, scalar_t* __restrict__ spk,
                     scalar_t* __restrict__ count, scalar_t* __restrict__ sg, int64_t S, scalar_t beta,
                     scalar_t threshold, scalar_t gamma, scalar_t scale) {
  for (int64_t i = 0; i < S; ++i) {
    scalar_t m = mem[i] * beta;
    m = m + c[i];
    const scalar_t fired = m > threshold ? scalar_t(1) : scalar_t(0);
    mem[i] = kZero ? m * (scalar_t(1) - fired) : m - fired * threshold;
    if (kSpk) spk[i] = fired;
    if (kCount) count[i] += fired;
    if (kSurrogate >= 0) sg[i] = surrogate_grad<scalar_t, kSurrogate>(m - threshold, gamma, scale);
  }
}

// The recursion of one plane over all steps from zero state, for the backward: the surrogate's
// derivative at every step into `sg` (T x S), and with kZero the spikes into `spk` (T x S).
template <typename scalar_t, bool kZero>
INLINE void scan_steps(const scalar_t* cur, const Shape& sh, const Lif& p, int64_t plane, scalar_t* mem,
                       scalar_t* sg, scalar_t* spk) {
  const scalar_t beta = p.beta, threshold = p.threshold, gamma = p.gamma, scale = p.scale;
  const int64_t S = sh.S;
  std::fill(mem, mem + S, scalar_t(0));
  for (int64_t t = 0; t < sh.T; ++t) {
    const scalar_t* c = sh.broadcast ? cur + plane * S : cur + (t * sh.P + plane) * S;
    scalar_t* s = kZero ? spk + t * S : nullptr;
    if (p.surrogate == PIECEWISE_LINEAR)
      lif_step<scalar_t, kZero, kZero, false, PIECEWISE_LINEAR>(c, mem, s, nullptr, sg + t * S, S, beta, threshold,
                                                                gamma, scale);
    else
      lif_step<scalar_t, kZero, kZero, false, FAST_SIGMOID>(c, mem, s, nullptr, sg + t * S, S, beta, threshold,
                                                            gamma, scale);
  }
}

template <typename scalar_t>
INLINE void scan_plane(const scalar_t* cur, const Shape& sh, const Lif& p, int64_t plane, scalar_t* mem,
                       scalar_t* sg, scalar_t* spk) {
  if (p.zero_reset)
    scan_steps<scalar_t, true>(cur, sh, p, plane, mem, sg, spk);
  else
    scan_steps<scalar_t, false>(cur, sh, p, plane, mem, sg, spk);
}

// 2x2 average pool of one plane of spikes, (S / W) rows of W: pairs along a row first (one long
// loop: W is even, so no pair crosses a row), then pairs of rows (every channel has an even number
// of rows, so none crosses a channel). A window's sum of 0/1 values is exact in any order.
template <typename scalar_t>
INLINE void pool_plane(const scalar_t* __restrict__ spk, int64_t S, int64_t W, scalar_t* __restrict__ pairs,
                       scalar_t* __restrict__ out) {
  const int64_t W2 = W / 2;
  for (int64_t k = 0; k < S / 2; ++k) pairs[k] = spk[2 * k] + spk[2 * k + 1];
  for (int64_t i = 0; i < S / W / 2; ++i) {
    const scalar_t* __restrict__ r0 = pairs + 2 * i * W2;
    const scalar_t* __restrict__ r1 = r0 + W2;
    for (int64_t j = 0; j < W2; ++j) out[i * W2 + j] = (r0[j] + r1[j]) * scalar_t(0.25);
  }
}

// sum over t of x[t] (T rows of S), in the order of at::native multi_row_sum (SumKernel.cpp):
// rows are added in groups of 2^k (k = max(4, ceil(log2 T) / 4)) carried up four levels.
template <typename scalar_t>
INLINE void cascade_sum(const scalar_t* x, int64_t T, int64_t S, scalar_t* acc,
                                                       scalar_t* out) {
  constexpr int64_t levels = 4;
  int64_t log2 = 0;
  while ((int64_t(1) << log2) < T) ++log2;
  const int64_t power = std::max<int64_t>(4, log2 / levels);
  const int64_t step = int64_t(1) << power, mask = step - 1;
  std::fill(acc, acc + levels * S, scalar_t(0));
  int64_t t = 0;
  for (; t + step <= T;) {
    for (int64_t j = 0; j < step; ++j, ++t)
      for (int64_t i = 0; i < S; ++i) acc[i] += x[t * S + i];
    for (int64_t l = 1; l < levels; ++l) {
      for (int64_t i = 0; i < S; ++i) {
        acc[l * S + i] += acc[(l - 1) * S + i];
        acc[(l - 1) * S + i] = scalar_t(0);
      }
      if ((t & (mask << (l * power))) != 0) break;
    }
  }
  for (; t < T; ++t)
    for (int64_t i = 0; i < S; ++i) acc[i] += x[t * S + i];
  for (int64_t l = 1; l < levels; ++l)
    for (int64_t i = 0; i < S; ++i) acc[i] += acc[l * S + i];
  std::copy(acc, acc + S, out);
}

template <typename scalar_t>
INLINE void forward_planes(const scalar_t* cur, scalar_t* out, scalar_t* count, const Shape& sh, const Lif& p,
                           int64_t begin, int64_t end) {
  const scalar_t beta = p.beta, threshold = p.threshold;
  const int64_t S = sh.S, So = sh.pool ? S / 4 : S;
  std::vector<scalar_t> mem(S), spk(sh.pool ? S : 0), pairs(sh.pool ? S / 2 : 0);
  for (int64_t plane = begin; plane < end; ++plane) {
    scalar_t* n = count + plane * S;
    std::fill(mem.begin(), mem.end(), scalar_t(0));
    std::fill(n, n + S, scalar_t(0));
    for (int64_t t = 0; t < sh.T; ++t) {
      const scalar_t* c = sh.broadcast ? cur + plane * S : cur + (t * sh.P + plane) * S;
      scalar_t* o = out + (t * sh.P + plane) * So;
      scalar_t* s = sh.pool ? spk.data() : o;  // pooled: the step's spikes stay in cache
      if (p.zero_reset)
        lif_step<scalar_t, true, true, true, -1>(c, mem.data(), s, n, nullptr, S, beta, threshold, 0, 0);
      else
        lif_step<scalar_t, false, true, true, -1>(c, mem.data(), s, n, nullptr, S, beta, threshold, 0, 0);
      if (sh.pool) pool_plane<scalar_t>(s, S, sh.W, pairs.data(), o);
    }
  }
}

template <typename scalar_t>
INLINE void backward_planes(const scalar_t* cur, const scalar_t* g_out, const scalar_t* g_count, scalar_t* g_cur,
                            const Shape& sh, const Lif& p, int64_t begin, int64_t end) {
  const int64_t S = sh.S, T = sh.T, So = sh.pool ? S / 4 : S, W = sh.W, W2 = sh.W / 2;
  const scalar_t beta = p.beta, reset = -p.beta * p.threshold;
  std::vector<scalar_t> mem(S), sg(T * S), g_buf(S), acc(sh.broadcast ? 4 * S : 0), spk(p.zero_reset ? T * S : 0);
  scalar_t* __restrict__ g = g_buf.data();
  for (int64_t plane = begin; plane < end; ++plane) {
    scan_plane<scalar_t>(cur, sh, p, plane, mem.data(), sg.data(), spk.data());
    const scalar_t* __restrict__ gc = g_count ? g_count + plane * S : nullptr;
    for (int64_t t = T - 1; t >= 0; --t) {
      // g = dL/dspk[t], as autograd adds it up: the pool's backward (dL/dout / 4 in each window)
      // or the next layer's gradient, plus the count's
      const scalar_t* __restrict__ go = g_out ? g_out + (t * sh.P + plane) * So : nullptr;
      if (go && sh.pool) {  // every row of the plane: S / W rows, H of each of its channels
        for (int64_t h = 0; h < S / W; ++h)
          for (int64_t j = 0; j < W2; ++j) {
            const scalar_t v = go[(h / 2) * W2 + j] / scalar_t(4);
            g[h * W + 2 * j] = v;
            g[h * W + 2 * j + 1] = v;
          }
      } else if (go) {
        std::copy(go, go + S, g);
      } else {
        std::fill(g, g + S, scalar_t(0));
      }
      if (gc && go) {
        for (int64_t i = 0; i < S; ++i) g[i] = g[i] + gc[i];
      } else if (gc) {
        std::copy(gc, gc + S, g);
      }
      // s[t] in sg is replaced by d[t] = dL/dmem[t]; d[t+1] is the row after it (broadcast) or
      // the output's step t + 1
      scalar_t* __restrict__ d = sh.broadcast ? sg.data() + t * S : g_cur + (t * sh.P + plane) * S;
      const scalar_t* __restrict__ s = sg.data() + t * S;
      const scalar_t* __restrict__ next = sh.broadcast ? d + S : d + sh.P * S;
      if (t == T - 1) {
        for (int64_t i = 0; i < S; ++i) d[i] = g[i] * s[i];
      } else if (p.zero_reset) {  // next * (1 - spk[t]) is exact: then subtract's step
        const scalar_t* __restrict__ f = spk.data() + t * S;
        for (int64_t i = 0; i < S; ++i) d[i] = std::fma(next[i] * (scalar_t(1) - f[i]), beta, g[i] * s[i]);
      } else if (p.detach_reset) {
        for (int64_t i = 0; i < S; ++i) d[i] = std::fma(next[i], beta, g[i] * s[i]);
      } else {
        for (int64_t i = 0; i < S; ++i) d[i] = std::fma(reset * s[i], next[i], std::fma(next[i], beta, g[i] * s[i]));
      }
    }
    if (sh.broadcast) cascade_sum<scalar_t>(sg.data(), T, S, acc.data(), g_cur + plane * S);
  }
}

// One clone per instruction set: the dispatcher picks the widest the CPU has when the library is
// loaded, so one build serves the AVX2 and the AVX512 machines alike (and any x86-64).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

#define DEFINE_PLANES(scalar_t)                                                                              \
  SIMD_CLONES void forward_##scalar_t(const scalar_t* cur, scalar_t* out, scalar_t* count, const Shape& sh,   \
                                      const Lif& p, int64_t b, int64_t e) {                                   \
    forward_planes<scalar_t>(cur, out, count, sh, p, b, e);                                                   \
  }                                                                                                          \
  SIMD_CLONES void backward_##scalar_t(const scalar_t* cur, const scalar_t* g_out, const scalar_t* g_count,   \
                                       scalar_t* g_cur, const Shape& sh, const Lif& p, int64_t b, int64_t e) { \
    backward_planes<scalar_t>(cur, g_out, g_count, g_cur, sh, p, b, e);                                       \
  }
DEFINE_PLANES(float)
DEFINE_PLANES(double)

void forward(const float* c, float* o, float* n, const Shape& sh, const Lif& p, int64_t b, int64_t e) {
  forward_float(c, o, n, sh, p, b, e);
}
void forward(const double* c, double* o, double* n, const Shape& sh, const Lif& p, int64_t b, int64_t e) {
  forward_double(c, o, n, sh, p, b, e);
}
void backward(const float* c, const float* go, const float* gn, float* gc, const Shape& sh, const Lif& p,
              int64_t b, int64_t e) {
  backward_float(c, go, gn, gc, sh, p, b, e);
}
void backward(const double* c, const double* go, const double* gn, double* gc, const Shape& sh, const Lif& p,
              int64_t b, int64_t e) {
  backward_double(c, go, gn, gc, sh, p, b, e);
}

// cur: (T, P, S) or, broadcast, (P, S); contiguous. H, W > 0: pool the planes (S = H * W) 2x2.
Shape shape_of(const at::Tensor& cur, int64_t T, int64_t H, int64_t W, bool broadcast) {
  TORCH_CHECK(cur.device().is_cpu(), "fused LIF: a CPU tensor, got ", cur.device());
  TORCH_CHECK(cur.is_contiguous(), "fused LIF: cur must be contiguous");
  TORCH_CHECK(cur.dim() == (broadcast ? 2 : 3), "fused LIF: cur must be (T, P, S) or, broadcast, (P, S)");
  TORCH_CHECK(T >= 1, "fused LIF: T >= 1, got ", T);
  Shape sh{T, cur.size(broadcast ? 0 : 1), cur.size(broadcast ? 1 : 2), H, W, H > 0, broadcast};
  TORCH_CHECK(broadcast || cur.size(0) == T, "fused LIF: cur has ", cur.size(0), " steps, T = ", T);
  TORCH_CHECK(!sh.pool || (H % 2 == 0 && W % 2 == 0 && sh.S % (H * W) == 0), "fused LIF: pooled planes must ",
              "be channels of H x W, H and W even, got ", H, " x ", W, " for S = ", sh.S);
  return sh;
}

Lif lif_of(double beta, double threshold, int64_t surrogate, double gamma, double scale, bool detach_reset,
           bool zero_reset) {
  TORCH_CHECK(surrogate == PIECEWISE_LINEAR || surrogate == FAST_SIGMOID, "fused LIF: unknown surrogate ",
              surrogate);
  TORCH_CHECK(!zero_reset || detach_reset, "fused LIF: the zero reset is implemented detached only");
  return Lif{beta, threshold, gamma, scale, surrogate, detach_reset, zero_reset};
}

int64_t grain(const Shape& sh) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, sh.S * sh.T)); }

// -> (out (T, P, S or S / 4), count (P, S) or an empty tensor when not with_count)
std::tuple<at::Tensor, at::Tensor> lif_forward(const at::Tensor& cur, int64_t T, int64_t H, int64_t W,
                                               bool broadcast, double beta, double threshold, int64_t surrogate,
                                               double gamma, double scale, bool detach_reset, bool zero_reset,
                                               bool with_count) {
  const Shape sh = shape_of(cur, T, H, W, broadcast);
  const Lif p = lif_of(beta, threshold, surrogate, gamma, scale, detach_reset, zero_reset);
  at::Tensor out = at::empty({sh.T, sh.P, sh.pool ? sh.S / 4 : sh.S}, cur.options());
  at::Tensor count = with_count ? at::empty({sh.P, sh.S}, cur.options()) : at::empty({0}, cur.options());
  AT_DISPATCH_FLOATING_TYPES(cur.scalar_type(), "lif_forward", [&] {
    const scalar_t* c = cur.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    scalar_t* n = with_count ? count.mutable_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, sh.P, grain(sh), [&](int64_t b, int64_t e) { forward(c, o, n, sh, p, b, e); });
  });
  return {out, count};
}

// g_out: like out, or empty (no gradient reached out); g_count: (P, S) or empty. -> dL/dcur, cur's shape.
at::Tensor lif_backward(const at::Tensor& cur, const at::Tensor& g_out, const at::Tensor& g_count, int64_t T,
                        int64_t H, int64_t W, bool broadcast, double beta, double threshold, int64_t surrogate,
                        double gamma, double scale, bool detach_reset, bool zero_reset) {
  const Shape sh = shape_of(cur, T, H, W, broadcast);
  const Lif p = lif_of(beta, threshold, surrogate, gamma, scale, detach_reset, zero_reset);
  const bool has_out = g_out.numel() > 0, has_count = g_count.numel() > 0;
  TORCH_CHECK(!has_out || (g_out.is_contiguous() && g_out.numel() == sh.T * sh.P * (sh.pool ? sh.S / 4 : sh.S)),
              "fused LIF: g_out must be contiguous, of out's shape");
  TORCH_CHECK(!has_count || (g_count.is_contiguous() && g_count.numel() == sh.P * sh.S),
              "fused LIF: g_count must be contiguous, (P, S)");
  at::Tensor g_cur = at::empty(cur.sizes(), cur.options());
  AT_DISPATCH_FLOATING_TYPES(cur.scalar_type(), "lif_backward", [&] {
    const scalar_t* c = cur.const_data_ptr<scalar_t>();
    const scalar_t* go = has_out ? g_out.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* gn = has_count ? g_count.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gc = g_cur.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, sh.P, grain(sh), [&](int64_t b, int64_t e) { backward(c, go, gn, gc, sh, p, b, e); });
  });
  return g_cur;
}

}  // namespace

TORCH_LIBRARY(snn_lif, m) {
  m.def("forward(Tensor cur, int T, int H, int W, bool broadcast, float beta, float threshold, int surrogate, "
        "float gamma, float scale, bool detach_reset, bool zero_reset, bool with_count) -> (Tensor, Tensor)");
  m.def("backward(Tensor cur, Tensor g_out, Tensor g_count, int T, int H, int W, bool broadcast, float beta, "
        "float threshold, int surrogate, float gamma, float scale, bool detach_reset, bool zero_reset) -> Tensor");
  m.impl("forward", c10::DispatchKey::CPU, &lif_forward);
  m.impl("backward", c10::DispatchKey::CPU, &lif_backward);
}
