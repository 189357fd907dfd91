//! Access-number and trunk routes of `tenant-operator serve` over real HTTP, on
//! PostgreSQL and SQLite, including the access-number rules of an import set up
//! through these routes and checked through the list route.

#[path = "support/shim.rs"]
mod shim;
mod support;

use reqwest::Method;
use serde_json::{Value, json};
use shim::{Api, Shim, ShimOptions, TenantArchive};
use support::{Backend, TestDatabase};

const NUMBERS: &str = "/configapi/v2/accessnumbers";

on_both_backends!(
    trunk_route_creates_and_rejects,
    numbers_create_list_delete,
    numbers_reject_bad_requests,
    numbers_get_trunk_of_longest_prefix,
    numbers_list_paginates_with_cursor,
    import_applies_number_rules,
);

async fn start(backend: Backend) -> (TestDatabase, Shim, Api) {
    let db = TestDatabase::new(backend).await;
    let shim = Shim::start(&db.url, &db.reporting_prefix, ShimOptions::default()).await;
    let api = shim.client().await;
    (db, shim, api)
}

async fn create_trunk(api: &Api, name: &str, prefixes: &[&str]) {
    let prefixes: Vec<Value> = prefixes
        .iter()
        .map(|prefix| json!({"prefix": prefix, "cost": 0.01}))
        .collect();
    let body = json!({"domain": "sip.carrier.test", "carrier": "Carrier", "prefixes": prefixes});
    let (status, reply) = api
        .send_json(
            Method::POST,
            &format!("/configapi/v2/selfservice/trunk/{name}"),
            &body,
        )
        .await;
    assert_eq!(status, 200, "create trunk {name}: {reply}");
}

async fn create_numbers(api: &Api, body: Value) -> (u16, Value) {
    api.send_json(Method::POST, NUMBERS, &body).await
}

/// Returns `number -> (tenantUrl, trunk)` of every listed number.
async fn number_map(api: &Api) -> std::collections::BTreeMap<String, (Value, Value)> {
    api.all_numbers(None)
        .await
        .into_iter()
        .map(|item| {
            let number = item["number"].as_str().expect("number").to_owned();
            (number, (item["tenantUrl"].clone(), item["trunk"].clone()))
        })
        .collect()
}

async fn trunk_route_creates_and_rejects(backend: Backend) {
    let (_db, _shim, api) = start(backend).await;
    let body = json!({"domain": "sip.carrier-a.test", "carrier": "Carrier A",
                      "prefixes": [{"prefix": "1415", "cost": 0.012}, {"prefix": "1800", "cost": 0}]});
    let path = "/configapi/v2/selfservice/trunk/carrier-a";
    let (status, reply) = api.send_json(Method::POST, path, &body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["name"], "carrier-a");
    assert_eq!(reply["prefixes"][0]["prefix"], "1415");

    let (status, reply) = api.send_json(Method::POST, path, &body).await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["error"], "conflict");

    let bad_bodies = [
        (
            "blank domain",
            json!({"domain": " ", "carrier": "C", "prefixes": []}),
        ),
        (
            "letters in prefix",
            json!({"domain": "d", "carrier": "C", "prefixes": [{"prefix": "14a", "cost": 1}]}),
        ),
        (
            "negative cost",
            json!({"domain": "d", "carrier": "C", "prefixes": [{"prefix": "1", "cost": -1}]}),
        ),
        (
            "repeated prefix",
            json!({"domain": "d", "carrier": "C",
            "prefixes": [{"prefix": "1", "cost": 1}, {"prefix": "1", "cost": 2}]}),
        ),
        ("missing carrier", json!({"domain": "d"})),
        (
            "unknown field",
            json!({"domain": "d", "carrier": "C", "color": "red"}),
        ),
    ];
    for (case, body) in bad_bodies {
        let (status, reply) = api
            .send_json(Method::POST, "/configapi/v2/selfservice/trunk/other", &body)
            .await;
        assert_eq!(status, 400, "{case}: {reply}");
        assert_eq!(reply["error"], "bad_request", "{case}");
    }
    let (status, _) = api
        .send_json(
            Method::POST,
            "/configapi/v2/selfservice/trunk/bad%20name",
            &json!({"domain": "d", "carrier": "C"}),
        )
        .await;
    assert_eq!(status, 400, "trunk name with a space");
}

async fn numbers_create_list_delete(backend: Backend) {
    let (_db, _shim, api) = start(backend).await;
    let (status, reply) = create_numbers(
        &api,
        json!({"number": "0420000000", "count": 5, "media": "TEXT"}),
    )
    .await;
    assert_eq!(status, 204, "{reply}");
    let (status, reply) = create_numbers(&api, json!({"number": "0420000010"})).await;
    assert_eq!(status, 204, "{reply}");

    let items = api.all_numbers(None).await;
    let numbers: Vec<&str> = items
        .iter()
        .map(|item| item["number"].as_str().expect("number"))
        .collect();
    assert_eq!(
        numbers,
        [
            "0420000000",
            "0420000001",
            "0420000002",
            "0420000003",
            "0420000004",
            "0420000010"
        ]
    );
    assert_eq!(items[0]["media"], "TEXT");
    assert_eq!(items[0]["tenantUrl"], Value::Null);
    assert_eq!(items[0]["trunk"], Value::Null);
    assert_eq!(items[5]["media"], "VOICE", "media defaults to VOICE");

    let (status, reply) = create_numbers(&api, json!({"number": "0420000004", "count": 3})).await;
    assert_eq!(status, 409, "overlap with an existing number: {reply}");
    assert_eq!(
        api.all_numbers(None).await.len(),
        6,
        "a rejected creation wrote nothing"
    );

    let (status, reply) = api
        .send_json(
            Method::DELETE,
            NUMBERS,
            &json!({"number": "0420000003", "count": 10}),
        )
        .await;
    assert_eq!(status, 204, "{reply}");
    let remaining: Vec<String> = api
        .all_numbers(None)
        .await
        .iter()
        .map(|item| item["number"].as_str().expect("number").to_owned())
        .collect();
    assert_eq!(remaining, ["0420000000", "0420000001", "0420000002"]);

    let (status, reply) = api
        .send_json(
            Method::DELETE,
            NUMBERS,
            &json!({"number": "0420000003", "count": 10}),
        )
        .await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["error"], "not_found");

    let (status, _) = api
        .get_json("/configapi/v2/accessnumbers?tenantUrl=nobody.cc.test")
        .await;
    assert_eq!(status, 404, "filter by an unknown tenant");
}

async fn numbers_reject_bad_requests(backend: Backend) {
    let (_db, _shim, api) = start(backend).await;
    create_trunk(&api, "known", &["1"]).await;
    let cases = [
        ("letters", json!({"number": "14a"})),
        ("too long", json!({"number": "1234567890123456"})),
        ("empty", json!({"number": ""})),
        ("zero count", json!({"number": "100", "count": 0})),
        ("overflow", json!({"number": "998", "count": 3})),
        ("too many", json!({"number": "100000000", "count": 100_001})),
        ("bad media", json!({"number": "100", "media": "voice"})),
        (
            "unknown tenant",
            json!({"number": "100", "tenantUrl": "nobody.cc.test"}),
        ),
        (
            "unknown trunk",
            json!({"number": "100", "trunks": [{"name": "missing", "prefix": "1"}]}),
        ),
        (
            "letters in trunk prefix",
            json!({"number": "100", "trunks": [{"name": "known", "prefix": "x"}]}),
        ),
        ("unknown field", json!({"number": "100", "owner": "x"})),
    ];
    for (case, body) in cases {
        let (status, reply) = create_numbers(&api, body).await;
        assert_eq!(status, 400, "{case}: {reply}");
        assert_eq!(reply["error"], "bad_request", "{case}");
    }
    let (status, reply) = create_numbers(&api, json!({"number": "997", "count": 3})).await;
    assert_eq!(status, 204, "the last three-digit numbers fit: {reply}");

    let text = api
        .request(Method::POST, NUMBERS)
        .header("content-type", "text/plain")
        .body("{\"number\": \"100\"}")
        .send()
        .await
        .expect("request");
    assert_eq!(text.status(), 415);

    let (status, _) = api.get_json("/configapi/v2/accessnumbers?limit=0").await;
    assert_eq!(status, 400, "limit 0");
    let (status, _) = api.get_json("/configapi/v2/accessnumbers?after=x1").await;
    assert_eq!(status, 400, "cursor that is not a number");
}

async fn numbers_get_trunk_of_longest_prefix(backend: Backend) {
    let (_db, _shim, api) = start(backend).await;
    create_trunk(&api, "wide", &["1415"]).await;
    create_trunk(&api, "narrow", &["141555501"]).await;
    let body = json!({
        "number": "14155550098", "count": 4,
        "trunks": [{"name": "wide", "prefix": "1415"}, {"name": "narrow", "prefix": "141555501"}]
    });
    let (status, reply) = create_numbers(&api, body).await;
    assert_eq!(status, 204, "{reply}");
    let numbers = number_map(&api).await;
    let trunk = |number: &str| numbers[number].1.clone();
    assert_eq!(trunk("14155550098"), "wide");
    assert_eq!(trunk("14155550099"), "wide");
    assert_eq!(trunk("14155550100"), "narrow");
    assert_eq!(trunk("14155550101"), "narrow");

    let body = json!({"number": "2125550000", "trunks": [{"name": "wide", "prefix": "1415"}]});
    let (status, reply) = create_numbers(&api, body).await;
    assert_eq!(status, 204, "{reply}");
    assert_eq!(
        number_map(&api).await["2125550000"].1,
        Value::Null,
        "no prefix matches"
    );
}

async fn numbers_list_paginates_with_cursor(backend: Backend) {
    let (_db, _shim, api) = start(backend).await;
    let (status, _) = create_numbers(&api, json!({"number": "5550000", "count": 2500})).await;
    assert_eq!(status, 204);
    let (status, _) = create_numbers(&api, json!({"number": "555", "count": 3})).await;
    assert_eq!(status, 204);

    let (status, first) = api.get_json("/configapi/v2/accessnumbers?limit=2").await;
    assert_eq!(status, 200);
    let numbers: Vec<&str> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["number"].as_str().expect("n"))
        .collect();
    assert_eq!(numbers, ["555", "556"], "shorter numbers sort first");
    assert_eq!(first["nextCursor"], "556");

    let (status, second) = api
        .get_json("/configapi/v2/accessnumbers?limit=2&after=556")
        .await;
    assert_eq!(status, 200);
    let numbers: Vec<&str> = second["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["number"].as_str().expect("n"))
        .collect();
    assert_eq!(numbers, ["557", "5550000"]);

    let (_, default_page) = api.get_json(NUMBERS).await;
    assert_eq!(
        default_page["items"].as_array().expect("items").len(),
        1000,
        "default page size"
    );

    let all = api.all_numbers(None).await;
    assert_eq!(all.len(), 2503, "every number once across pages");
    let mut seen: Vec<&str> = all
        .iter()
        .map(|item| item["number"].as_str().expect("n"))
        .collect();
    seen.dedup();
    assert_eq!(seen.len(), 2503, "no number twice");
    assert_eq!(seen.last(), Some(&"5552499"));
}

/// Checks the access-number rules of an import: a missing number is created without trunk, a
/// free number is assigned and keeps its trunk, and a range with a number of another
/// tenant is skipped whole.
async fn import_applies_number_rules(backend: Backend) {
    let (_db, shim, api) = start(backend).await;
    let dir = shim.dir().to_owned();

    let owner = TenantArchive::new("owner", 2);
    owner.write(&dir.join("owner.zip"));
    let response = api.import(&dir.join("owner.zip"), 10).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );

    create_trunk(&api, "carrier-a", &["1800"]).await;
    let free = json!({"number": "18005550120", "count": 5,
                      "trunks": [{"name": "carrier-a", "prefix": "1800"}]});
    assert_eq!(create_numbers(&api, free).await.0, 204);
    let owned = json!({"number": "13105550005", "tenantUrl": "owner.cc.test"});
    assert_eq!(create_numbers(&api, owned).await.0, 204);

    let tenant = TenantArchive::new("importer", 3)
        .range("18005550118", "18005550122")
        .range("13105550000", "13105550009")
        .range("16505550000", "16505550001");
    tenant.write(&dir.join("importer.zip"));
    let response = api.import(&dir.join("importer.zip"), 10).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.expect("report");
    assert_eq!(report["outcome"], "Imported");
    assert_eq!(report["accessNumbers"]["created"], 4, "{report}");
    assert_eq!(report["accessNumbers"]["assigned"], 3, "{report}");
    assert_eq!(report["accessNumbers"]["skipped"], 10, "{report}");

    let numbers = number_map(&api).await;
    let importer = json!("importer.cc.test");
    assert_eq!(
        numbers["18005550118"],
        (importer.clone(), Value::Null),
        "created without trunk"
    );
    assert_eq!(
        numbers["18005550120"],
        (importer.clone(), json!("carrier-a")),
        "assigned keeps trunk"
    );
    assert_eq!(
        numbers["18005550122"],
        (importer.clone(), json!("carrier-a"))
    );
    assert_eq!(
        numbers["18005550123"],
        (Value::Null, json!("carrier-a")),
        "outside the range stays free"
    );
    assert_eq!(
        numbers["13105550005"],
        (json!("owner.cc.test"), Value::Null),
        "owned number not taken"
    );
    assert!(
        !numbers.contains_key("13105550000"),
        "skipped range creates nothing"
    );
    assert_eq!(numbers["16505550001"], (importer.clone(), Value::Null));

    let of_importer = api.all_numbers(Some("importer.cc.test")).await;
    assert_eq!(of_importer.len(), 7, "tenant filter");
}
