//! net probe (in progress)
