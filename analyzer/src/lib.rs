//! vmlat's analyzer: reads bundles and capture files, finds heartbeat gaps and
//! failovers, and names the hop where the time was lost.
