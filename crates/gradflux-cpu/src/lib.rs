//! gradflux-cpu
