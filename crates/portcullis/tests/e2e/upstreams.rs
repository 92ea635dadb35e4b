//! (placeholder: tests being written)
