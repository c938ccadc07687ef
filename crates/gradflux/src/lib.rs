//! gradflux
