//! vmlat's charts and HTML report: renderers of the analyzer's results.
