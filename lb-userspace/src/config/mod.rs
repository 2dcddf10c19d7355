//! The YAML configuration model (filled in by the configuration issue).
