//! Group commit: many tasks each hand in one item to write; whoever gets the writer's turn writes
//! every item queued so far in one batch, and each task gets its own item's result.
//!
//! Under light load a batch is the caller's own item alone (no waiting, no timer); under load the
//! items that arrive while one batch is being written form the next batch. No background task:
//! the writer is whichever caller holds the turn, so it works wherever the callers run.

use std::future::Future;

use tokio::sync::oneshot;

pub struct GroupCommit<T, R> {
    queue: parking_lot::Mutex<Vec<(T, oneshot::Sender<R>)>>,
    turn: tokio::sync::Mutex<()>,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self { queue: parking_lot::Mutex::new(Vec::new()), turn: tokio::sync::Mutex::new(()) }
    }
}

/// The writer's turn ended without an answer for an item (the writing future was dropped).
#[derive(Debug)]
pub struct Abandoned;

impl<T, R> GroupCommit<T, R> {
    /// Queues `item` and waits until it is written, by this caller or by another. `write` gets a
    /// batch and returns one result per item, in order.
    pub async fn submit<F, Fut>(&self, item: T, write: F) -> Result<R, Abandoned>
    where
        F: FnOnce(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (tx, mut rx) = oneshot::channel();
        self.queue.lock().push((item, tx));
        // A writer that holds the turn may take our item with its batch: then its answer comes
        // first, and we need not wait for the turn at all.
        let turn = tokio::select! {
            biased;
            answer = &mut rx => return answer.map_err(|_| Abandoned),
            turn = self.turn.lock() => turn,
        };
        // The answer may also have come just as the turn did.
        match rx.try_recv() {
            Ok(r) => return Ok(r),
            Err(oneshot::error::TryRecvError::Closed) => return Err(Abandoned),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        // Let tasks that are ready to run (other callers about to hand in theirs) do so first: the
        // batch grows under load, and an idle writer loses only a turn of the scheduler.
        tokio::task::yield_now().await;
        let batch = std::mem::take(&mut *self.queue.lock());
        let (items, answers): (Vec<T>, Vec<oneshot::Sender<R>>) = batch.into_iter().unzip();
        let results = write(items).await;
        for (answer, result) in answers.into_iter().zip(results) {
            let _ = answer.send(result);
        }
        drop(turn);
        rx.await.map_err(|_| Abandoned)
    }

    /// Items waiting for the writer's turn.
    pub fn queued(&self) -> usize {
        self.queue.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn items_queued_during_a_write_form_the_next_batch() {
        let gc: Arc<GroupCommit<u32, u32>> = Arc::default();
        let sizes = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (open, gate) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for i in 0..10u32 {
            let (gc, seen, mut gate) = (gc.clone(), sizes.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                gc.submit(i, |items| async move {
                    seen.lock().push(items.len());
                    // The first batch is held open until the other nine are queued.
                    let _ = gate.wait_for(|open| *open).await;
                    items.into_iter().map(|x| x * 2).collect()
                })
                .await
                .unwrap()
            }));
            if i == 0 {
                while sizes.lock().is_empty() {
                    tokio::task::yield_now().await;
                }
            }
        }
        while gc.queued() < 9 {
            tokio::task::yield_now().await;
        }
        open.send(true).unwrap();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), i as u32 * 2, "an item got another item's result");
        }
        assert_eq!(*sizes.lock(), vec![1, 9]);
        assert_eq!(gc.queued(), 0);
    }

    #[tokio::test]
    async fn a_lone_item_is_written_at_once() {
        let gc: GroupCommit<&str, usize> = GroupCommit::default();
        let r = gc.submit("one", |items| async move { vec![items.len()] }).await.unwrap();
        assert_eq!(r, 1);
    }
}
