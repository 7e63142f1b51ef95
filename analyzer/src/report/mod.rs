//! Renderers of an [`Analysis`](crate::Analysis): each reads the typed result and knows
//! nothing of how it was computed.

pub mod json;
pub mod text;
