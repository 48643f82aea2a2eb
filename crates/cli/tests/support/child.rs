//! Waiting for a child process with a bound, so that a hang fails the test instead of stalling the suite.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits for `child` to exit. After `timeout` it kills the child and panics with `what()`.
pub fn wait_within(child: &mut Child, timeout: Duration, what: impl FnOnce() -> String) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait on a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}", what());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
