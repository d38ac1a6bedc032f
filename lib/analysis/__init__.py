"""What the records say: the paper's selection rule and Tables 1-2 (`select`), ours (`robust`), the
tables as CSV, Markdown and LaTeX (`report`), two sweeps' tables side by side (`compare`), the
machines a sweep ran on (`provenance`), the figures (`plots`) and a factor study's outcomes
(`ablations`). Reads records (`lib.record`); imports nothing from `lib.sweep` or `lib.export`."""
