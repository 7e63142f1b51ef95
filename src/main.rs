//! The `vmlat` command: a thin clap front end over the tracer, analyzer and plots.

fn main() {}
