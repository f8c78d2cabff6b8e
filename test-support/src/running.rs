//! A service's `run` spawned as a task, and the switch that stops it as
//! SIGTERM would.

use std::future::Future;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Spawns `run(shutdown)`; `shutdown` resolves when [`Running::trigger`]
    /// is called or this is dropped.
    pub fn spawn<F, Fut>(run: F) -> Running
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(Box::pin(async {
            let _ = stopped.await;
        })));
        Running { stop: Some(stop), task: Some(task) }
    }

    /// Starts the shutdown without waiting for it.
    pub fn trigger(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Triggers the shutdown and waits for `run` to return (once; later
    /// calls return `Ok`).
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        self.trigger();
        match self.task.take() {
            Some(task) => task.await.expect("the service task panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.trigger();
    }
}
