//! The engine's futures are `Send`, so web frameworks and spawned tasks can await
//! them directly.

use tenant_operator::db::Database;
use tenant_operator::engine::{Engine, ImportRequest};
use tenant_operator::lock::ImportLock;

fn assert_send<T: Send>(_: &T) {}

#[allow(dead_code)]
fn import_future_is_send(engine: &Engine, request: &ImportRequest, lock: &dyn ImportLock) {
    let future = engine.import(request, lock);
    assert_send(&future);
    let drop_future = engine.drop_reporting_database(uuid::Uuid::nil());
    assert_send(&drop_future);
}

#[allow(dead_code)]
fn export_future_is_send(db: &Database, path: &std::path::Path) {
    let future = tenant_operator::export::export_tenant(db, "tenant.cc.test", path);
    assert_send(&future);
}

#[tokio::test]
async fn import_runs_on_spawned_task() {
    let dir = tempfile::tempdir().expect("folder");
    let url = format!("sqlite://{}", dir.path().join("config.db").display());
    let db = Database::connect(&url).await.expect("connect");
    db.migrate().await.expect("migrate");
    let engine = Engine::new(db.clone(), Default::default(), Default::default());
    let request = ImportRequest {
        archive: dir.path().join("missing.zip"),
        import_id: None,
        lock_timeout: std::time::Duration::from_secs(1),
    };
    let lock = db.standalone_lock();
    let task = tokio::spawn(async move { engine.import(&request, &lock).await });
    let result = task.await.expect("task");
    assert!(result.is_err(), "a missing archive file is an error");
}
