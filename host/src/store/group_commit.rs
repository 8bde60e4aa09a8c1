//! Group commit for SQLite: many short write transactions from concurrent
//! requests committed as one, each inside its own savepoint so that one
//! that fails (a 402) rolls back alone.
//!
//! SQLite has one writer, and a commit writes every page the transaction
//! touched; a charged message touches about ten (the transfer, the message
//! and their indexes). Committing the messages that arrived together in one
//! transaction writes those pages once for all of them. Each request still
//! learns its own outcome, and only after the commit that made it durable.

use sqlx::Executor;
use sqlx::any::AnyRow;
use tokio::sync::{mpsc, oneshot};

use super::{Backend, Step, run_steps};

/// Jobs committed together at most.
const BATCH_MAX: usize = 64;
/// Jobs waiting for the writer at most; beyond, callers wait to enqueue.
const QUEUE_MAX: usize = 1024;

type Outcome = Result<Vec<AnyRow>, sqlx::Error>;

struct Job {
    steps: Vec<Step>,
    reply: oneshot::Sender<Outcome>,
}

/// A handle to the writer task.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer on the (single-connection) write pool.
    pub fn start(write: sqlx::AnyPool) -> GroupCommit {
        let (queue, jobs) = mpsc::channel(QUEUE_MAX);
        tokio::spawn(writer(write, jobs));
        GroupCommit { queue }
    }

    /// Runs `steps` in a transaction shared with other jobs; returns their
    /// rows once committed, or the error of the statement that failed
    /// (nothing of this job is then written).
    pub async fn run(&self, steps: Vec<Step>) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Job { steps, reply })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        outcome.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn writer(write: sqlx::AnyPool, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit(&write, &batch).await;
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// Runs each job in a savepoint of one transaction and commits. If the
/// commit fails, every job fails with it.
async fn commit(write: &sqlx::AnyPool, batch: &[Job]) -> Vec<Outcome> {
    let failed_all = |e: &sqlx::Error| {
        batch
            .iter()
            .map(|_| Err(sqlx::Error::Protocol(format!("group commit failed: {e}"))))
            .collect()
    };
    let mut tx = match write.begin().await {
        Ok(tx) => tx,
        Err(e) => return failed_all(&e),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let mut steps = Vec::with_capacity(job.steps.len() + 2);
        steps.push(Step::new("SAVEPOINT job", vec![]));
        steps.extend(job.steps.iter().cloned());
        steps.push(Step::new("RELEASE job", vec![]));
        match run_steps(&mut tx, Backend::Sqlite, &steps).await {
            Ok(rows) => outcomes.push(Ok(rows)),
            Err(e) => {
                if let Err(undo) = tx.execute("ROLLBACK TO job; RELEASE job").await {
                    let _ = tx.rollback().await;
                    let mut all: Vec<Outcome> = failed_all(&undo);
                    all[outcomes.len()] = Err(e);
                    return all;
                }
                outcomes.push(Err(e));
            }
        }
    }
    crate::crashpoint::hit(crate::crashpoint::BEFORE_EFFECT_COMMIT);
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(e) => failed_all(&e),
    }
}
