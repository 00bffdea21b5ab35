//! Group commit on the SQLite writer.
//!
//! SQLite has one writer. Run one statement at a time, every write costs a round trip to
//! the connection's worker thread and back, and the next write waits through both even
//! when dozens are queued. Here writes are queued to one task that owns the writer's turn:
//! it takes every write queued since it last ran (up to [`MOST_JOBS`]), puts like writes
//! side by side and sends each run of them in chunks, each chunk one transaction in one
//! piece (`BEGIN IMMEDIATE; ..; COMMIT`), then answers each caller with its own
//! statements' results. Under load a round trip carries many writes; alone, a write goes
//! as it is.
//!
//! Nothing is answered before the piece that carries it has committed. If a piece fails,
//! it is rolled back whole and each write is run again on its own, so a write that fails
//! (a taken unique value) fails alone and the others are not held hostage by it. The task
//! is not cancelled by a caller going away: a write that was queued is run, and its caller
//! (if gone) never hears of it, as when a request is cut off after its statement was sent.

use futures_util::TryStreamExt;
use sea_orm::sqlx::{self, Either, Executor as _};
use sea_orm::{DbBackend, DbErr, ExecResult, QueryResult, Statement};
use tokio::sync::{mpsc, oneshot};

use super::{Conn, Held, Slot, bound, piece, query_error, settle};

/// The most writes one piece carries: enough for every request in flight at the load the
/// bench drives, few enough that SQLite's 32,766 bound values are never reached by the
/// service's statements.
const MOST_JOBS: usize = 64;

/// One statement's answer: the rows it returned, and what it changed.
pub(crate) struct Done {
    pub(crate) rows: Vec<QueryResult>,
    pub(crate) result: ExecResult,
}

/// A caller's write: its statements, run in order in one transaction, and where to answer.
struct Job {
    statements: Vec<Statement>,
    reply: oneshot::Sender<Result<Vec<Done>, DbErr>>,
}

/// The queue to the writer's task.
#[derive(Clone)]
pub(crate) struct Group {
    jobs: mpsc::UnboundedSender<Job>,
    /// How many pieces of more than one write were committed (for tests).
    #[cfg(test)]
    pub(crate) grouped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Group {
    /// Starts the task that writes for `writer` (which must not itself have a group: the
    /// task would keep its own queue open). `None` outside a tokio runtime.
    pub(crate) fn start(writer: Held) -> Option<Group> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (jobs, queue) = mpsc::unbounded_channel();
        #[cfg(test)]
        let grouped = std::sync::Arc::default();
        runtime.spawn(write_all(
            writer,
            queue,
            #[cfg(test)]
            std::sync::Arc::clone(&grouped),
        ));
        Some(Group {
            jobs,
            #[cfg(test)]
            grouped,
        })
    }

    /// Runs `statements` in order as one transaction (one statement: on its own), answering
    /// each one's rows and changes.
    pub(crate) async fn run(&self, statements: Vec<Statement>) -> Result<Vec<Done>, DbErr> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { statements, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs one statement on its own, answering its rows and changes.
    pub(crate) async fn run_one(&self, statement: Statement) -> Result<Done, DbErr> {
        self.run(vec![statement])
            .await?
            .pop()
            .ok_or_else(|| DbErr::Custom("a statement answered nothing".to_owned()))
    }
}

/// The writer's task: runs until every [`Group`] is dropped.
async fn write_all(
    writer: Held,
    mut queue: mpsc::UnboundedReceiver<Job>,
    #[cfg(test)] grouped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut jobs = Vec::new();
    while let Some(first) = queue.recv().await {
        jobs.push(first);
        while jobs.len() < MOST_JOBS {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match writer.hold().await {
            Ok(mut slot) => {
                #[cfg(test)]
                if jobs.len() > 1 {
                    grouped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                write_batch(&mut slot, &mut jobs).await
            }
            Err(e) => {
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The sizes a run of like writes is cut to, each size one text that the driver prepares
/// once and keeps.
const CHUNKS: [usize; 4] = [8, 4, 2, 1];

/// Runs the queued `jobs` (all of them answered on return). Like writes (the same SQL)
/// are put side by side and sent in chunks of [`CHUNKS`] sizes, each chunk one transaction
/// in one piece. A text made of whatever happened to be queued would be new each time,
/// and SQLite would parse and plan every statement in it again: more work than the round
/// trips it saves. Cut this way, the texts recur and stay prepared, and a handful of round
/// trips carry the whole queue. The order of the writes changes; their callers were all
/// waiting at once, so any order is one they could have had.
async fn write_batch(slot: &mut Slot, jobs: &mut Vec<Job>) {
    jobs.sort_by(|a, b| sql_of(a).cmp(sql_of(b)));
    let mut runs = Vec::new();
    let mut at = 0;
    while at < jobs.len() {
        let run = jobs[at..]
            .iter()
            .take_while(|j| sql_of(j).eq(sql_of(&jobs[at])))
            .count();
        runs.push(run);
        at += run;
    }
    let mut queued = jobs.drain(..);
    for run in runs {
        let mut left = run;
        while left > 0 {
            let size = CHUNKS.into_iter().find(|&c| c <= left).unwrap_or(1);
            write_chunk(slot, queued.by_ref().take(size).collect()).await;
            left -= size;
        }
    }
}

/// The SQL of a job's statements, to tell like writes.
fn sql_of(job: &Job) -> impl Iterator<Item = &str> {
    job.statements.iter().map(|s| s.sql.as_str())
}

/// Runs like writes as one piece. If it fails, it was rolled back whole: each write runs
/// again alone, so that the one that failed is the only one to hear of it. With the
/// connection gone, they would all fail alike: they are told at once.
async fn write_chunk(slot: &mut Slot, chunk: Vec<Job>) {
    if chunk.len() == 1 {
        for job in chunk {
            write_alone(slot, job).await;
        }
        return;
    }
    let statements: Vec<&Statement> = chunk.iter().flat_map(|j| &j.statements).collect();
    match run_piece(slot, &statements).await {
        Ok(done) => {
            let mut done = done.into_iter();
            for job in chunk {
                let own = done.by_ref().take(job.statements.len()).collect();
                let _ = job.reply.send(Ok(own));
            }
        }
        Err(e) if slot.is_none() => {
            for job in chunk {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
        Err(_) => {
            for job in chunk {
                write_alone(slot, job).await;
            }
        }
    }
}

/// Runs one write: a statement as it is, several as one transaction.
async fn write_alone(slot: &mut Slot, job: Job) {
    let answer = match job.statements.as_slice() {
        [one] => run_alone(slot, one).await,
        many => {
            let many: Vec<&Statement> = many.iter().collect();
            run_piece(slot, &many).await
        }
    };
    let _ = job.reply.send(answer);
}

/// Runs `statements` as `BEGIN IMMEDIATE; ..; COMMIT` in one piece, answering each one's
/// results (not those of `BEGIN` and `COMMIT`). On an error the transaction is rolled
/// back (or the connection closed, which undoes it as well).
async fn run_piece(slot: &mut Slot, statements: &[&Statement]) -> Result<Vec<Done>, DbErr> {
    let whole = piece(statements.iter().copied());
    match run_alone(slot, &whole).await {
        Ok(mut done) if done.len() == statements.len() + 2 => {
            done.pop();
            done.remove(0);
            Ok(done)
        }
        Ok(done) => {
            roll_back(slot).await;
            Err(DbErr::Custom(format!(
                "a piece of {} statements answered {} results",
                statements.len() + 2,
                done.len()
            )))
        }
        Err(e) => {
            roll_back(slot).await;
            Err(e)
        }
    }
}

/// After a piece failed part way: `ROLLBACK` (an error saying no transaction was open is
/// fine: the failure came before `BEGIN` took or after `COMMIT` ended it); if even that
/// cannot run, the connection is closed.
async fn roll_back(slot: &mut Slot) {
    if slot.is_none() {
        return;
    }
    let rollback = Statement::from_string(DbBackend::Sqlite, "ROLLBACK");
    if let Err(e) = run_alone(slot, &rollback).await
        && !e.to_string().contains("no transaction is active")
    {
        super::close(slot);
    }
}

/// Runs one SQL text (one statement or several), answering each statement's rows and
/// changes in order. The driver keeps the text prepared for the next time it runs.
async fn run_alone(slot: &mut Slot, stmt: &Statement) -> Result<Vec<Done>, DbErr> {
    let result = match slot.as_mut() {
        Some(kept) => each_statement(&mut kept.conn, stmt)
            .await
            .map_err(query_error),
        None => Err(super::gone()),
    };
    settle(slot, result)
}

async fn each_statement(conn: &mut Conn, stmt: &Statement) -> Result<Vec<Done>, sqlx::Error> {
    #[allow(irrefutable_let_patterns)]
    let Conn::Sqlite(c) = conn else {
        return Err(sqlx::Error::Protocol(
            "group commit is for SQLite only".to_owned(),
        ));
    };
    let (sql, values) = bound(stmt);
    let mut answers = (&mut **c).fetch_many(sqlx::query_with(sql, values));
    let mut done = Vec::new();
    let mut rows = Vec::new();
    while let Some(answer) = answers.try_next().await? {
        match answer {
            Either::Right(row) => rows.push(QueryResult::from(row)),
            Either::Left(result) => done.push(Done {
                rows: std::mem::take(&mut rows),
                result: ExecResult::from(result),
            }),
        }
    }
    Ok(done)
}

fn stopped() -> DbErr {
    DbErr::Conn(sea_orm::RuntimeErr::Internal(
        "the writer's task has stopped".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    use tokio::sync::oneshot;

    use super::{Done, Job, write_batch};
    use crate::handle::Handle;
    use crate::{DatabaseOptions, connect};

    /// What a caller waits on.
    type Answer = oneshot::Receiver<Result<Vec<Done>, sea_orm::DbErr>>;

    fn job(sql: &str, values: Vec<sea_orm::Value>) -> (Job, Answer) {
        let (reply, answer) = oneshot::channel();
        let statements = vec![Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        )];
        (Job { statements, reply }, answer)
    }

    fn insert(k: &str) -> (Job, Answer) {
        job("INSERT INTO t (k) VALUES (?) RETURNING k", vec![k.into()])
    }

    /// Runs `jobs` as one group on the writer; answers what each caller heard (the rows
    /// returned, or the error) and the keys in the table after.
    async fn group(jobs: Vec<(Job, Answer)>) -> (Vec<Result<usize, String>>, Vec<String>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let db = connect(&url, &DatabaseOptions::default())
            .await
            .expect("opens");
        db.connection()
            .execute_unprepared(
                "CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('taken')",
            )
            .await
            .expect("creates");
        let Handle::Held(held) = db.connection() else {
            panic!("a SQLite file is held");
        };
        let (mut jobs, answers): (Vec<Job>, Vec<_>) = jobs.into_iter().unzip();
        let mut slot = held.hold().await.expect("the writer");
        write_batch(&mut slot, &mut jobs).await;
        drop(slot);
        let mut heard = Vec::new();
        for answer in answers {
            heard.push(match answer.await.expect("every caller is answered") {
                Ok(done) => Ok(done.iter().map(|d| d.rows.len()).sum()),
                Err(e) => Err(e.to_string()),
            });
        }
        let keys = crate::handle::tests::keys(&db).await;
        db.close().await.expect("closes");
        (heard, keys)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_in_chunks_writes_each_once_and_a_failing_write_fails_alone() {
        // Eleven like writes (chunks of 8, 2 and 1), one of them taken already.
        let mut jobs: Vec<_> = (0..10).map(|i| insert(&format!("k{i}"))).collect();
        jobs.insert(4, insert("taken"));
        let (heard, keys) = group(jobs).await;
        for (i, h) in heard.iter().enumerate() {
            if i == 4 {
                assert!(
                    matches!(h, Err(e) if e.contains("UNIQUE")),
                    "its own error: {h:?}"
                );
            } else {
                assert_eq!(h, &Ok(1), "write {i} returned its row");
            }
        }
        let mut want: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        want.push("taken".to_owned());
        want.sort();
        assert_eq!(keys, want, "every other write, once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_ends_its_transaction_fails_and_the_others_are_committed() {
        // A stray `ROLLBACK` among the writes: its piece's `COMMIT` finds no transaction.
        // The writes around it are committed and say so; it alone fails.
        let mut jobs: Vec<_> = (0..5).map(|i| insert(&format!("a{i}"))).collect();
        jobs.push(job("ROLLBACK", Vec::new()));
        jobs.extend((0..5).map(|i| insert(&format!("z{i}"))));
        let (heard, keys) = group(jobs).await;
        for (i, h) in heard.iter().enumerate() {
            if i != 5 {
                assert_eq!(h, &Ok(1), "write {i} returned its row");
            }
        }
        assert!(
            heard[5].is_err(),
            "the stray ROLLBACK fails: {:?}",
            heard[5]
        );
        let mut want: Vec<String> = (0..5)
            .flat_map(|i| [format!("a{i}"), format!("z{i}")])
            .collect();
        want.push("taken".to_owned());
        want.sort();
        assert_eq!(keys, want);
    }
}
