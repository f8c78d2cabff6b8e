//! Room-password checks, a few at a time, on threads of their own that reuse
//! their hashing memory.
//!
//! An Argon2id check takes ~19 MiB and tens of milliseconds. Run on tokio's
//! blocking threads with the argon2 crate's allocating calls, every check
//! leaves its block with one of glibc's per-thread arenas: a few dozen wrong
//! guesses took a backend from 6 MB to 473 MB, never given back. Here:
//!
//! - at most `workers` checks run at once, each on a dedicated thread that
//!   keeps one memory buffer and reuses it for every check;
//! - a check waits at most `wait` for a free worker, then gets
//!   [`PasswordPoolError::Busy`] (the caller answers `rate_limited`);
//! - a worker idle for [`RELEASE_AFTER_IDLE`] frees its buffer. The buffer is
//!   reserved larger than glibc's largest dynamic mmap threshold (32 MiB), so
//!   it is always its own mapping and freeing it returns it to the OS (a
//!   smaller one would stay in the arena). Only the blocks a hash touches
//!   ([`MEMORY_BLOCKS`], 19 MiB) count in RSS.
//!
//! This lives here, not in `common` (which does no I/O and starts no threads).

use std::sync::Arc;
use std::time::Duration;

use common::password::{self, Block, MEMORY_BLOCKS, PasswordError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// A worker frees its memory after this long without a check.
pub const RELEASE_AFTER_IDLE: Duration = Duration::from_secs(2);

/// Blocks reserved per buffer: just over 32 MiB, glibc's cap on its dynamic
/// mmap threshold, so the buffer is always mmapped and `free` unmaps it.
const RESERVED_BLOCKS: usize = 33 * 1024 * 1024 / Block::SIZE;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordPoolError {
    #[error("too many password checks at once; try again in a moment")]
    Busy,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("the password checker has stopped")]
    Stopped,
}

enum Work {
    Verify { password: String, hash: String, reply: oneshot::Sender<Result<bool, PasswordError>> },
    Hash { password: String, salt: [u8; 16], reply: oneshot::Sender<Result<String, PasswordError>> },
}

/// The pool; dropping it stops its workers once they finish their check.
#[derive(Debug)]
pub struct PasswordPool {
    work: Sender<(Work, OwnedSemaphorePermit)>,
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordPool {
    /// Starts `workers` threads (at least one); a check waits up to `wait`
    /// for one of them.
    pub fn new(workers: usize, wait: Duration) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (work, queue) = crossbeam_channel::unbounded();
        for n in 0..workers {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || worker(&queue))?;
        }
        Ok(PasswordPool { work, permits: Arc::new(Semaphore::new(workers)), wait })
    }

    /// True when `password` matches the stored PHC `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PasswordPoolError> {
        self.run(|reply| Work::Verify { password, hash, reply }).await
    }

    /// A PHC hash of `password` with `salt` (from a secure random source).
    pub async fn hash(
        &self,
        password: String,
        salt: [u8; 16],
    ) -> Result<String, PasswordPoolError> {
        self.run(|reply| Work::Hash { password, salt, reply }).await
    }

    async fn run<T>(
        &self,
        work: impl FnOnce(oneshot::Sender<Result<T, PasswordError>>) -> Work,
    ) -> Result<T, PasswordPoolError> {
        // A permit per worker, held until the worker is done (even if this
        // caller gives up): the queue never holds more than the workers can
        // take at once, so waiting happens here, bounded, not in the queue.
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordPoolError::Busy)?
            .map_err(|_| PasswordPoolError::Stopped)?;
        let (reply, answer) = oneshot::channel();
        self.work.send((work(reply), permit)).map_err(|_| PasswordPoolError::Stopped)?;
        Ok(answer.await.map_err(|_| PasswordPoolError::Stopped)??)
    }
}

fn worker(queue: &Receiver<(Work, OwnedSemaphorePermit)>) {
    let mut memory: Option<Vec<Block>> = None;
    loop {
        let (work, permit) = match queue.recv_timeout(RELEASE_AFTER_IDLE) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                memory = None;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let blocks = memory.get_or_insert_with(|| password::new_memory(RESERVED_BLOCKS));
        debug_assert!(blocks.len() >= MEMORY_BLOCKS);
        // The permit is given back before the answer: a caller that asks
        // again as soon as it has one must find this worker free. A caller
        // that gave up (its future dropped) no longer reads the reply.
        match work {
            Work::Verify { password, hash, reply } => {
                let answer = password::verify_password_with_memory(&password, &hash, blocks);
                drop(permit);
                let _ = reply.send(answer);
            }
            Work::Hash { password, salt, reply } => {
                let answer = password::hash_password_with_memory(&password, &salt, blocks);
                drop(permit);
                let _ = reply.send(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verifies_and_bounds_the_wait() {
        let pool = PasswordPool::new(1, Duration::from_millis(1)).unwrap();
        let hash = pool.hash("hunter2".into(), [5; 16]).await.unwrap();
        assert_eq!(pool.verify("hunter2".into(), hash.clone()).await, Ok(true));
        assert_eq!(pool.verify("hunter3".into(), hash.clone()).await, Ok(false));
        assert_eq!(
            pool.hash(String::new(), [5; 16]).await,
            Err(PasswordPoolError::Password(PasswordError::BadLength))
        );
        // One worker, a 1 ms wait: of two checks at once, one is turned away.
        let (a, b) = tokio::join!(
            pool.verify("a".into(), hash.clone()),
            pool.verify("b".into(), hash.clone())
        );
        assert!([a, b].contains(&Err(PasswordPoolError::Busy)));
    }
}
