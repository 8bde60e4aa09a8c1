//! A request's reads share one connection, and a request never holds a
//! kept connection while it waits for another (`store::held`).

use canopy::store::{Store, held};
use canopy_e2e::{Backend, fresh_database};

async fn store(backend: Backend) -> (Store, Option<tempfile::TempDir>) {
    let (url, dir) = fresh_database(backend).await;
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, dir)
}

/// Whether `c` is the connection that made the temporary table `mark`
/// (temporary tables are one connection's own on both backends).
async fn made_mark(c: &mut sqlx::AnyConnection) -> bool {
    sqlx::query("SELECT count(*) FROM mark")
        .fetch_one(c)
        .await
        .is_ok()
}

async fn reads_share_one_connection(backend: Backend) {
    let (store, _dir) = store(backend).await;
    held::scope(async {
        let mut first = store.reader().await.expect("reader");
        sqlx::query("CREATE TEMPORARY TABLE mark (x INTEGER)")
            .execute(&mut *first)
            .await
            .expect("temporary table");
        drop(first);
        let mut second = store.reader().await.expect("reader");
        assert!(
            made_mark(&mut second).await,
            "a request's second read runs on its first read's connection"
        );
        // Two readers at once are two connections.
        let mut third = store.reader().await.expect("reader");
        assert!(!made_mark(&mut third).await);
    })
    .await;
}

/// More requests than the pool has connections, each reading and then
/// writing: a request lets go of its kept reader before it waits for the
/// writer, so none waits on a connection another request keeps (on
/// PostgreSQL readers and writers share one pool of 16).
async fn readers_are_let_go_before_a_write(backend: Backend) {
    let (store, _dir) = store(backend).await;
    let requests = (0..48).map(|i| {
        let store = store.clone();
        tokio::spawn(held::scope(async move {
            let mut c = store.reader().await?;
            sqlx::query("SELECT count(*) FROM accounts")
                .fetch_one(&mut *c)
                .await
                .map_err(canopy::store::db_error)?;
            drop(c);
            // Hold the kept reader while the others take theirs.
            tokio::task::yield_now().await;
            let mut tx = store.begin().await?;
            sqlx::query("SELECT count(*) FROM accounts")
                .fetch_one(&mut *tx)
                .await
                .map_err(canopy::store::db_error)?;
            tx.commit().await.map_err(canopy::store::db_error)?;
            // A one-round-trip write reuses or takes a connection as well.
            store
                .write_steps(vec![canopy::store::Step::new(
                    "SELECT count(*) FROM accounts",
                    vec![],
                )])
                .await
                .map_err(canopy::store::db_error)?;
            let mut c = store.reader().await?;
            sqlx::query("SELECT count(*) FROM accounts")
                .fetch_one(&mut *c)
                .await
                .map_err(canopy::store::db_error)?;
            Ok::<_, canopy::Error>(i)
        }))
    });
    for request in requests.collect::<Vec<_>>() {
        request
            .await
            .expect("the request ran")
            .expect("every request got its connections");
    }
}

mod reads_share_one_connection {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::reads_share_one_connection(canopy_e2e::Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::reads_share_one_connection(canopy_e2e::Backend::Postgres).await
    }
}

mod readers_are_let_go_before_a_write {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::readers_are_let_go_before_a_write(canopy_e2e::Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::readers_are_let_go_before_a_write(canopy_e2e::Backend::Postgres).await
    }
}
