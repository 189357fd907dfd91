//! A fake Kubernetes API server for the operator's tests, on 127.0.0.1.
//!
//! Scope: it keeps objects in memory and serves the REST calls that the operator makes,
//! through an ordinary kubeconfig that [`FakeApiServer::kubeconfig_path`] writes.
//!
//! - Resources: Secrets, `coordination.k8s.io/v1` Leases, `events.k8s.io/v1` and core
//!   Events, and `ccops.dev/v1alpha1` TenantImports (with a status subresource).
//! - Verbs: get, delete, and list and watch, namespaced or across namespaces. Watches
//!   take `resourceVersion`, bookmarks and `timeoutSeconds`, and lists and watches a
//!   `metadata.name` or `metadata.namespace` field selector and an equality label
//!   selector. Create returns 409 AlreadyExists on an existing name, and replace 409
//!   Conflict on a stale `resourceVersion`. Patches are merge, strategic merge
//!   (applied as a merge patch), JSON and server-side apply.
//! - Metadata: `uid`, `creationTimestamp`, a global `resourceVersion` counter, and a
//!   `generation` that grows when anything but metadata and status changes. On a
//!   resource with a status subresource, writes to the main resource keep the stored
//!   status and writes to `/status` change only the status.
//! - Fault injection ([`Fault`]): a chosen status code or added latency for the next
//!   matching requests. A request log of method and path for later RBAC checks.
//! - Clients: each kubeconfig from [`FakeApiServer::kubeconfig_for`] carries its own
//!   bearer token, so [`FakeApiServer::cut_off`] can make the server fail every request
//!   of one client with 503, as an API outage seen by one process.
//! - Lease takeovers: [`FakeApiServer::expire_lease`] and
//!   [`FakeApiServer::steal_lease`] change a stored Lease as another writer would,
//!   with a new resourceVersion and a watch event.
//!
//! It is a fake, not a kube-apiserver: it evaluates no OpenAPI schema, defaults or CEL
//! rules, has no authentication, admission, RBAC, garbage collection, finalizers or
//! field managers. Server-side apply is a merge patch that creates a missing object,
//! so fields that a manager stops sending are not removed.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

/// The bearer token of [`FakeApiServer::kubeconfig_path`].
const DEFAULT_TOKEN: &str = "fake-token";

/// How often an open watch receives a bookmark.
const BOOKMARK_INTERVAL: Duration = Duration::from_millis(500);

/// A resource type the fake serves.
#[derive(Debug, Clone, Copy)]
struct ResourceType {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    has_status: bool,
}

const RESOURCE_TYPES: [ResourceType; 5] = [
    ResourceType {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        has_status: false,
    },
    ResourceType {
        group: "",
        version: "v1",
        plural: "events",
        kind: "Event",
        has_status: false,
    },
    ResourceType {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        has_status: false,
    },
    ResourceType {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event",
        has_status: false,
    },
    ResourceType {
        group: "ccops.dev",
        version: "v1alpha1",
        plural: "tenantimports",
        kind: "TenantImport",
        has_status: true,
    },
];

impl ResourceType {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Returns the key of this type's objects in the store, such as
    /// `leases.coordination.k8s.io`.
    fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// What a fault does to a matching request.
#[derive(Debug, Clone)]
pub enum FaultAction {
    /// Returns this status code and a `Status` body, without touching the store.
    Status(u16),
    /// Waits this long, then serves the request.
    Delay(Duration),
}

/// A fault for the next `times` requests whose method matches (any when `None`) and
/// whose path contains `path_contains`.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The method to match, or any.
    pub method: Option<Method>,
    /// A substring of the request path.
    pub path_contains: String,
    /// What to do.
    pub action: FaultAction,
    /// How many requests it still applies to.
    pub times: usize,
}

/// One served request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, possibly empty.
    pub query: String,
}

#[derive(Debug, Clone)]
struct Change {
    resource_version: u64,
    resource: String,
    event_type: &'static str,
    object: Value,
}

#[derive(Default)]
struct Store {
    resource_version: u64,
    /// Objects by resource key, then by (namespace, name).
    objects: BTreeMap<String, BTreeMap<(String, String), Value>>,
    history: Vec<Change>,
}

struct State {
    store: Mutex<Store>,
    changes: broadcast::Sender<Change>,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<Vec<RequestRecord>>,
    /// Bearer tokens whose every request fails with 503.
    outages: Mutex<BTreeSet<String>>,
    /// Counts requests and changes, so waiters re-check on either.
    activity: watch::Sender<u64>,
}

/// A running fake API server. Dropping it stops the server.
pub struct FakeApiServer {
    address: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

/// A parsed resource path.
#[derive(Debug)]
struct Target {
    resource: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// An API error in the shape of a Kubernetes `Status`.
#[derive(Debug)]
struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }

    fn not_found(resource: &ResourceType, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", resource.key());
        Self::new(404, "NotFound", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(body)).into_response()
    }
}

impl FakeApiServer {
    /// Starts a fake API server on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let (changes, _) = broadcast::channel(1024);
        let state = Arc::new(State {
            store: Mutex::new(Store::default()),
            changes,
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            outages: Mutex::new(BTreeSet::new()),
            activity: watch::channel(0).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake API server");
        let address = listener.local_addr().expect("fake API server address");
        let router_state = state.clone();
        let router = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = router_state.clone();
                async move { handle(state, method, uri, headers, body).await }
            },
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("fake API server");
        });
        let dir = tempfile::tempdir().expect("kubeconfig folder");
        let fake = Self {
            address,
            state,
            server,
            dir,
        };
        std::fs::write(fake.kubeconfig_path(), fake.kubeconfig_yaml(DEFAULT_TOKEN))
            .expect("write kubeconfig");
        fake
    }

    /// Returns the server's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns the path of a kubeconfig file that points at this server, with
    /// `default` as namespace.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Writes a kubeconfig like [`FakeApiServer::kubeconfig_path`] whose requests carry
    /// the bearer token `client`, and returns its path. `client` must be a file name.
    pub fn kubeconfig_for(&self, client: &str) -> PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{client}"));
        std::fs::write(&path, self.kubeconfig_yaml(client)).expect("write kubeconfig");
        path
    }

    fn kubeconfig_yaml(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: fake\n  user:\n    token: {token}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\n",
            self.url()
        )
    }

    /// Fails every later request of the client of [`FakeApiServer::kubeconfig_for`]
    /// with 503 until [`FakeApiServer::restore`]. Watches it opened before stay open.
    pub fn cut_off(&self, client: &str) {
        lock(&self.state.outages).insert(client.to_owned());
    }

    /// Serves the requests of `client` again.
    pub fn restore(&self, client: &str) {
        lock(&self.state.outages).remove(client);
    }

    /// Moves the Lease's renewTime one second further into the past than its
    /// leaseDurationSeconds, so others see it expired and take it over through their
    /// normal acquire path. The holder stays, so a renewal by that holder would make
    /// the Lease current again. Returns the stored Lease.
    pub fn expire_lease(&self, namespace: &str, name: &str) -> Value {
        self.modify_lease(namespace, name, |spec| {
            let duration = spec["leaseDurationSeconds"].as_i64().unwrap_or(0);
            let expired = chrono::Utc::now() - chrono::Duration::seconds(duration + 1);
            spec["renewTime"] = json!(micro_time(expired));
        })
    }

    /// Replaces the Lease's holder with `holder`, as a writer that took it over would:
    /// a fresh acquireTime and renewTime, its own `duration`, one more transition.
    /// Returns the stored Lease.
    pub fn steal_lease(
        &self,
        namespace: &str,
        name: &str,
        holder: &str,
        duration: Duration,
    ) -> Value {
        self.modify_lease(namespace, name, |spec| {
            let now = json!(micro_time(chrono::Utc::now()));
            let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
            spec["holderIdentity"] = json!(holder);
            spec["acquireTime"] = now.clone();
            spec["renewTime"] = now;
            spec["leaseDurationSeconds"] = json!(duration.as_secs());
            spec["leaseTransitions"] = json!(transitions + 1);
        })
    }

    /// Changes the spec of a stored Lease and stores it as an update, with a new
    /// resourceVersion and a MODIFIED event. Panics when the Lease does not exist.
    fn modify_lease(&self, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) -> Value {
        let key = "leases.coordination.k8s.io";
        let id = (namespace.to_owned(), name.to_owned());
        let mut store = lock(&self.state.store);
        let mut lease = store
            .objects
            .get(key)
            .and_then(|objects| objects.get(&id))
            .cloned()
            .unwrap_or_else(|| panic!("Lease {namespace}/{name} does not exist"));
        change(&mut lease["spec"]);
        commit(&self.state, &mut store, key, id, "MODIFIED", lease)
    }

    /// Creates a kube client for this server.
    pub async fn client(&self) -> kube::Client {
        client_from(&self.kubeconfig_path()).await
    }

    /// Creates a kube client whose requests carry the bearer token `client`, see
    /// [`FakeApiServer::kubeconfig_for`].
    pub async fn client_for(&self, client: &str) -> kube::Client {
        client_from(&self.kubeconfig_for(client)).await
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state.faults).push(fault);
    }

    /// Returns every request served so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state.requests).clone()
    }

    /// Returns a stored object by resource key (`secrets`, `leases.coordination.k8s.io`,
    /// `tenantimports.ccops.dev`, `events.events.k8s.io`), namespace and name.
    pub fn object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let store = lock(&self.state.store);
        let objects = store.objects.get(resource)?;
        objects
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Returns every stored object of a resource key.
    pub fn objects(&self, resource: &str) -> Vec<Value> {
        let store = lock(&self.state.store);
        store
            .objects
            .get(resource)
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until `check` returns a value for the store's objects of `resource`, or
    /// panics with `what` after `timeout`. Re-checks on every request and change, with
    /// no polling.
    pub async fn wait_for<T>(
        &self,
        resource: &str,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&[Value]) -> Option<T>,
    ) -> T {
        let mut activity = self.state.activity.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            activity.borrow_and_update();
            if let Some(found) = check(&self.objects(resource)) {
                return found;
            }
            if tokio::time::timeout_at(deadline, activity.changed())
                .await
                .is_err()
            {
                let objects = self.objects(resource);
                panic!("timed out after {timeout:?} waiting for {what}: {objects:#?}");
            }
        }
    }

    /// Waits until a served request matches `check`, or panics with `what` after
    /// `timeout`.
    pub async fn wait_for_request(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&RequestRecord) -> bool,
    ) {
        let mut activity = self.state.activity.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            activity.borrow_and_update();
            if self.requests().iter().any(&check) {
                return;
            }
            if tokio::time::timeout_at(deadline, activity.changed())
                .await
                .is_err()
            {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn client_from(kubeconfig: &std::path::Path) -> kube::Client {
    let yaml = std::fs::read_to_string(kubeconfig).expect("read kubeconfig");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("parse kubeconfig");
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("kube config");
    kube::Client::try_from(config).expect("kube client")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn handle(
    state: Arc<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = parse_query(uri.query().unwrap_or(""));
    lock(&state.requests).push(RequestRecord {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or("").to_owned(),
    });
    state.activity.send_modify(|count| *count += 1);

    if is_cut_off(&state, &headers) {
        return ApiError::new(503, "ServiceUnavailable", "injected outage of this client")
            .into_response();
    }
    if let Some(action) = take_fault(&state, &method, &path) {
        match action {
            FaultAction::Status(code) => {
                return ApiError::new(code, "InjectedFault", format!("injected fault on {path}"))
                    .into_response();
            }
            FaultAction::Delay(delay) => tokio::time::sleep(delay).await,
        }
    }

    let target = match parse_path(&path) {
        Some(target) => target,
        None => {
            return ApiError::new(404, "NotFound", format!("the fake serves no {path}"))
                .into_response();
        }
    };
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();

    let result = match (method.clone(), &target.name) {
        (Method::GET, None) if query.get("watch").is_some_and(|v| v == "true" || v == "1") => {
            return watch(&state, &target, &query);
        }
        (Method::GET, None) => list(&state, &target, &query),
        (Method::GET, Some(name)) => get(&state, &target, name),
        (Method::POST, None) => create(&state, &target, &body),
        (Method::PUT, Some(name)) => replace(&state, &target, name, &body),
        (Method::PATCH, Some(name)) => patch(&state, &target, name, &content_type, &body),
        (Method::DELETE, Some(name)) => delete(&state, &target, name),
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not served on {path}"),
        )),
    };
    match result {
        Ok((status, object)) => (status, axum::Json(object)).into_response(),
        Err(error) => error.into_response(),
    }
}

fn is_cut_off(state: &State, headers: &HeaderMap) -> bool {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    token.is_some_and(|token| lock(&state.outages).contains(token))
}

/// Formats a time as a Kubernetes MicroTime.
fn micro_time(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn take_fault(state: &State, method: &Method, path: &str) -> Option<FaultAction> {
    let mut faults = lock(&state.faults);
    let index = faults.iter().position(|fault| {
        fault.times > 0
            && fault.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&fault.path_contains)
    })?;
    faults[index].times -= 1;
    let action = faults[index].action.clone();
    if faults[index].times == 0 {
        faults.remove(index);
    }
    Some(action)
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
            (Some((*namespace).to_owned()), rest)
        }
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_owned()), None),
        [plural, name, sub] => (*plural, Some((*name).to_owned()), Some((*sub).to_owned())),
        _ => return None,
    };
    let resource = RESOURCE_TYPES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)?;
    if subresource
        .as_deref()
        .is_some_and(|sub| sub != "status" || !resource.has_status)
    {
        return None;
    }
    Some(Target {
        resource: *resource,
        namespace,
        name,
        subresource,
    })
}

fn matches_selectors(object: &Value, query: &BTreeMap<String, String>) -> bool {
    let metadata = &object["metadata"];
    if let Some(selector) = query.get("fieldSelector") {
        for term in selector.split(',').filter(|t| !t.is_empty()) {
            let Some((field, value)) = term.split_once('=') else {
                return false;
            };
            let value = value.trim_start_matches('=');
            let actual = match field {
                "metadata.name" => metadata["name"].as_str(),
                "metadata.namespace" => metadata["namespace"].as_str(),
                _ => return false,
            };
            if actual != Some(value) {
                return false;
            }
        }
    }
    if let Some(selector) = query.get("labelSelector") {
        for term in selector.split(',').filter(|t| !t.is_empty()) {
            let Some((label, value)) = term.split_once('=') else {
                return false;
            };
            let value = value.trim_start_matches('=');
            if metadata["labels"][label].as_str() != Some(value) {
                return false;
            }
        }
    }
    true
}

fn in_scope(target: &Target, object: &Value) -> bool {
    target
        .namespace
        .as_deref()
        .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns))
}

type ApiResult = Result<(StatusCode, Value), ApiError>;

fn list(state: &State, target: &Target, query: &BTreeMap<String, String>) -> ApiResult {
    let store = lock(&state.store);
    let items: Vec<Value> = store
        .objects
        .get(&target.resource.key())
        .map(|objects| {
            objects
                .values()
                .filter(|o| in_scope(target, o) && matches_selectors(o, query))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let list = json!({
        "apiVersion": target.resource.api_version(),
        "kind": format!("{}List", target.resource.kind),
        "metadata": {"resourceVersion": store.resource_version.to_string()},
        "items": items,
    });
    Ok((StatusCode::OK, list))
}

fn get(state: &State, target: &Target, name: &str) -> ApiResult {
    let store = lock(&state.store);
    let key = (
        target.namespace.clone().unwrap_or_default(),
        name.to_owned(),
    );
    store
        .objects
        .get(&target.resource.key())
        .and_then(|objects| objects.get(&key))
        .map(|object| (StatusCode::OK, object.clone()))
        .ok_or_else(|| ApiError::not_found(&target.resource, name))
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|error| ApiError::new(400, "BadRequest", format!("invalid body: {error}")))
}

fn create(state: &State, target: &Target, body: &[u8]) -> ApiResult {
    let mut object = parse_body(body)?;
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = match object["metadata"]["name"].as_str() {
        Some(name) => name.to_owned(),
        None => match object["metadata"]["generateName"].as_str() {
            Some(prefix) => format!(
                "{prefix}{}",
                &uuid::Uuid::new_v4().simple().to_string()[..5]
            ),
            None => return Err(ApiError::new(422, "Invalid", "metadata.name is required")),
        },
    };
    let mut store = lock(&state.store);
    let key = target.resource.key();
    let exists = store
        .objects
        .get(&key)
        .is_some_and(|objects| objects.contains_key(&(namespace.clone(), name.clone())));
    if exists {
        let message = format!("{key} \"{name}\" already exists");
        return Err(ApiError::new(409, "AlreadyExists", message));
    }

    if target.resource.has_status
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    object["apiVersion"] = json!(target.resource.api_version());
    object["kind"] = json!(target.resource.kind);
    let metadata = &mut object["metadata"];
    metadata["name"] = json!(name);
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
    metadata["creationTimestamp"] =
        json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    metadata["generation"] = json!(1);
    let stored = commit(state, &mut store, &key, (namespace, name), "ADDED", object);
    Ok((StatusCode::CREATED, stored))
}

/// Stores `object` with a new resourceVersion and publishes the change.
fn commit(
    state: &State,
    store: &mut Store,
    key: &str,
    id: (String, String),
    event_type: &'static str,
    mut object: Value,
) -> Value {
    store.resource_version += 1;
    let resource_version = store.resource_version;
    object["metadata"]["resourceVersion"] = json!(resource_version.to_string());
    let objects = store.objects.entry(key.to_owned()).or_default();
    if event_type == "DELETED" {
        objects.remove(&id);
    } else {
        objects.insert(id, object.clone());
    }
    let change = Change {
        resource_version,
        resource: key.to_owned(),
        event_type,
        object: object.clone(),
    };
    store.history.push(change.clone());
    let _ = state.changes.send(change);
    state.activity.send_modify(|count| *count += 1);
    object
}

/// Builds the object to store from the current one and the client's new version,
/// following the rules of the main resource or the status subresource.
fn next_version(target: &Target, current: &Value, mut proposed: Value) -> Result<Value, ApiError> {
    let sent_version = proposed["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    let current_version = current["metadata"]["resourceVersion"].as_str();
    if let Some(sent) = &sent_version
        && Some(sent.as_str()) != current_version
    {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            target.resource.key(),
            current["metadata"]["name"].as_str().unwrap_or_default()
        );
        return Err(ApiError::new(409, "Conflict", message));
    }

    let mut next = if target.subresource.is_some() {
        let mut next = current.clone();
        next["status"] = proposed.get("status").cloned().unwrap_or(Value::Null);
        next
    } else {
        if target.resource.has_status {
            match current.get("status") {
                Some(status) => proposed["status"] = status.clone(),
                None => {
                    if let Some(map) = proposed.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        for field in [
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "generation",
        ] {
            proposed["metadata"][field] = current["metadata"][field].clone();
        }
        proposed
    };

    let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
    let changed = without_metadata_and_status(current) != without_metadata_and_status(&next);
    next["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
    next["apiVersion"] = json!(target.resource.api_version());
    next["kind"] = json!(target.resource.kind);
    Ok(next)
}

fn without_metadata_and_status(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

fn replace(state: &State, target: &Target, name: &str, body: &[u8]) -> ApiResult {
    let proposed = parse_body(body)?;
    let namespace = target.namespace.clone().unwrap_or_default();
    let id = (namespace, name.to_owned());
    let key = target.resource.key();
    let mut store = lock(&state.store);
    let current = store
        .objects
        .get(&key)
        .and_then(|objects| objects.get(&id))
        .cloned()
        .ok_or_else(|| ApiError::not_found(&target.resource, name))?;
    let next = next_version(target, &current, proposed)?;
    Ok((
        StatusCode::OK,
        commit(state, &mut store, &key, id, "MODIFIED", next),
    ))
}

fn patch(state: &State, target: &Target, name: &str, content_type: &str, body: &[u8]) -> ApiResult {
    let namespace = target.namespace.clone().unwrap_or_default();
    let id = (namespace, name.to_owned());
    let key = target.resource.key();
    let mut store = lock(&state.store);
    let current = store
        .objects
        .get(&key)
        .and_then(|objects| objects.get(&id))
        .cloned();
    let is_apply = content_type.starts_with("application/apply-patch");

    let Some(current) = current else {
        if is_apply && target.subresource.is_none() {
            drop(store);
            return create(state, target, body);
        }
        return Err(ApiError::not_found(&target.resource, name));
    };

    let mut patched = current.clone();
    if let Some(map) = patched.get_mut("metadata").and_then(Value::as_object_mut) {
        map.remove("resourceVersion");
    }
    if content_type.starts_with("application/json-patch+json") {
        let operations: json_patch::Patch = serde_json::from_slice(body).map_err(|error| {
            ApiError::new(400, "BadRequest", format!("invalid JSON patch: {error}"))
        })?;
        json_patch::patch(&mut patched, &operations).map_err(|error| {
            ApiError::new(422, "Invalid", format!("JSON patch failed: {error}"))
        })?;
    } else if is_apply
        || content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json")
    {
        let document = parse_body(body)?;
        merge_patch(&mut patched, &document);
    } else {
        let message = format!("unsupported patch type {content_type}");
        return Err(ApiError::new(415, "UnsupportedMediaType", message));
    }
    let next = next_version(target, &current, patched)?;
    Ok((
        StatusCode::OK,
        commit(state, &mut store, &key, id, "MODIFIED", next),
    ))
}

/// Applies a JSON merge patch (RFC 7386).
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(map) = target.as_object_mut() else {
        return;
    };
    for (field, value) in patch {
        if value.is_null() {
            map.remove(field);
        } else {
            merge_patch(map.entry(field.clone()).or_insert(Value::Null), value);
        }
    }
}

fn delete(state: &State, target: &Target, name: &str) -> ApiResult {
    let namespace = target.namespace.clone().unwrap_or_default();
    let id = (namespace, name.to_owned());
    let key = target.resource.key();
    let mut store = lock(&state.store);
    let current = store
        .objects
        .get(&key)
        .and_then(|objects| objects.get(&id))
        .cloned()
        .ok_or_else(|| ApiError::not_found(&target.resource, name))?;
    Ok((
        StatusCode::OK,
        commit(state, &mut store, &key, id, "DELETED", current),
    ))
}

fn watch_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event_type, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(state: &Arc<State>, target: &Target, query: &BTreeMap<String, String>) -> Response {
    let key = target.resource.key();
    let since: Option<u64> = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");

    // Subscribe before reading the backlog under the store lock, so no change falls
    // between the backlog and the live stream.
    let store = lock(&state.store);
    let mut live = state.changes.subscribe();
    let backlog: Vec<Bytes> = match since {
        Some(since) => store
            .history
            .iter()
            .filter(|c| c.resource_version > since && c.resource == key)
            .filter(|c| in_scope(target, &c.object) && matches_selectors(&c.object, query))
            .map(|c| watch_line(c.event_type, &c.object))
            .collect(),
        None => store
            .objects
            .get(&key)
            .map(|objects| {
                objects
                    .values()
                    .filter(|o| in_scope(target, o) && matches_selectors(o, query))
                    .map(|o| watch_line("ADDED", o))
                    .collect()
            })
            .unwrap_or_default(),
    };
    drop(store);

    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let state = state.clone();
    let scope = Target {
        resource: target.resource,
        namespace: target.namespace.clone(),
        name: None,
        subresource: None,
    };
    let query = query.clone();
    tokio::spawn(async move {
        for line in backlog {
            if sender.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = ticker.tick(), if bookmarks => {
                    let version = lock(&state.store).resource_version.to_string();
                    let bookmark = json!({
                        "apiVersion": scope.resource.api_version(),
                        "kind": scope.resource.kind,
                        "metadata": {"resourceVersion": version},
                    });
                    if sender.send(Ok(watch_line("BOOKMARK", &bookmark))).await.is_err() {
                        return;
                    }
                }
                change = live.recv() => {
                    let change = match change {
                        Ok(change) => change,
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    let wanted = change.resource == key
                        && in_scope(&scope, &change.object)
                        && matches_selectors(&change.object, &query);
                    if wanted && sender.send(Ok(watch_line(change.event_type, &change.object))).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
