//! Where Event invocations of the Invoke API go: a durable queue the binary provides (esb-async's),
//! called on a few blocking threads of its own, since accepting waits for an fsync and no monoio
//! core may ever wait on a disk.

use std::sync::Arc;

use crate::blocking::BlockingPool;

/// Accepts asynchronous invocations durably. Blocking; called off the IO cores only.
pub trait AsyncInvocations: Send + Sync + 'static {
    /// Returns once the invocation is stored so that it runs even if esb dies right after; only
    /// then is the caller answered 202. The error is for the log (the caller gets a 500).
    fn accept(
        &self,
        function: &str,
        payload: &[u8],
        client_context: Option<&str>,
        trace_id: Option<&str>,
    ) -> Result<(), String>;
}

/// Threads writing to the queue (concurrent enqueues share one fsync, so a few help), and how
/// many accepts may wait for them before callers are throttled (429).
const QUEUE_THREADS: usize = 4;
const QUEUE_BACKLOG: usize = 1024;

/// The queue and the threads that call it.
pub struct Events {
    pub sink: Arc<dyn AsyncInvocations>,
    pub pool: BlockingPool,
}

impl Events {
    pub fn new(sink: Arc<dyn AsyncInvocations>) -> std::io::Result<Events> {
        Ok(Events {
            sink,
            pool: BlockingPool::new(QUEUE_THREADS, QUEUE_BACKLOG)?,
        })
    }
}
