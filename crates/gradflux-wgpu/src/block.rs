//! What blocks the calling thread, kept in one place because a browser's main thread must
//! never block: there (wasm32) error scopes are not used — wgpu reports errors to the
//! device's uncaptured-error handler, and the next call returns them — and the calls that
//! wait for the device say so instead of hanging.

use gradflux_core::Result;

/// An open error scope natively; nothing in the browser.
pub(crate) struct Scope(#[cfg(not(target_arch = "wasm32"))] wgpu::ErrorScopeGuard);

/// Opens an error scope for `filter` on `device` (natively).
pub(crate) fn push(device: &wgpu::Device, filter: wgpu::ErrorFilter) -> Scope {
    #[cfg(not(target_arch = "wasm32"))]
    return Scope(device.push_error_scope(filter));
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (device, filter);
        Scope()
    }
}

impl Scope {
    /// The scope's error, if any (in the browser: `None`; errors arrive through the
    /// uncaptured-error handler instead).
    pub(crate) fn pop(self) -> Option<wgpu::Error> {
        #[cfg(not(target_arch = "wasm32"))]
        return pollster::block_on(self.0.pop());
        #[cfg(target_arch = "wasm32")]
        None
    }
}

/// `Ok` natively; in the browser an error saying that `what` waits for the device, which
/// the page's main thread may not do, and what to use instead.
pub(crate) fn may_block(what: &str) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return Err(gradflux_core::Error::Unsupported {
        backend: "webgpu".into(),
        what: format!(
            "{what} waits for the device, which a browser's main thread may not; use \
             `run_async` (results) or the `*_async` constructors"
        ),
    });
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = what;
        Ok(())
    }
}
