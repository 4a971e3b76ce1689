//! System tests: the three services as separate processes, on the real Postgres and NATS
//! JetStream, against both simulators. Run one at a time (nextest group `system`).

use pxsync_test_support::{Http, Service, TestNamespace, run_command, scratch_dir, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const INGESTOR: &str = env!("CARGO_BIN_EXE_pxsync-ingestor");
const PROJECTOR: &str = env!("CARGO_BIN_EXE_pxsync-projector");
const EMITTER: &str = env!("CARGO_BIN_EXE_pxsync-emitter");
const CLI: &str = env!("CARGO_BIN_EXE_pxsync");

const IW_BANNER: &str = "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a";
const IW_WIFI: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

fn order(
    id: &str,
    public: &str,
    status: &str,
    company: &str,
    email: &str,
    parent: Option<&str>,
    lines: Value,
) -> Value {
    json!({
        "id": id, "public_id": public, "event": "salon-sante-2026", "status": status,
        "parent_order_id": parent,
        "company": {"name": company, "address": {"street": "12 rue de la Paix", "street2": null, "postal_code": "75002", "city": "Paris", "country": "FR"}, "website": "https://acme.example"},
        "stand": {"number": format!("B{}", &id[4..]), "space": "Hall 1", "aisle": null},
        "booking_contact": {"civility": "Mme", "last_name": "Durand", "first_name": "Claire", "email": email,
            "company": company, "job_title": "Directrice", "phone_1": "+33 1 23 45 67 89", "phone_2": null, "preferred_language": "fr"},
        "lines": lines
    })
}

/// Everything one system test needs: simulators, a namespace, a scratch folder and the settings.
struct World {
    ns: TestNamespace,
    planexpo: pxsync_sim::Running,
    inwink: pxsync_sim::Running,
    http: Http,
    dir: std::path::PathBuf,
    services: Vec<Service>,
}

impl World {
    async fn new(tag: &str) -> World {
        let planexpo = pxsync_sim::planexpo::spawn(pxsync_sim::planexpo::Options::default())
            .await
            .unwrap();
        let inwink = pxsync_sim::inwink::spawn(pxsync_sim::inwink::Options::default())
            .await
            .unwrap();
        let http = Http::default();
        http.put(
            &format!("{}/_sim/products", inwink.base_url()),
            &json!({"data": [
                {"id": IW_BANNER, "name": "Bannière 2x1 m"}, {"id": IW_WIFI, "name": "Wi-Fi stand"}
            ]}),
        )
        .await;
        http.put(
            &format!("{}/_sim/catalog", planexpo.base_url()),
            &pxsync_sim::planexpo::demo_catalog(),
        )
        .await;
        World {
            ns: TestNamespace::new(tag).await,
            planexpo,
            inwink,
            http,
            dir: scratch_dir(tag),
            services: Vec::new(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let inwink_options = pxsync_sim::inwink::Options::default();
        let planexpo_options = pxsync_sim::planexpo::Options::default();
        let mut env = self.ns.env();
        env.extend([
            ("PXSYNC_PLANEXPO_BASE_URL".into(), self.planexpo.base_url()),
            ("PXSYNC_PLANEXPO_API_KEY".into(), planexpo_options.api_key),
            ("PXSYNC_PLANEXPO_EVENT".into(), planexpo_options.event),
            ("PXSYNC_PLANEXPO_POLL_INTERVAL".into(), "300ms".into()),
            ("PXSYNC_INWINK_BASE_URL".into(), self.inwink.base_url()),
            (
                "PXSYNC_INWINK_TOKEN_URL".into(),
                format!("{}/oauth/token", self.inwink.base_url()),
            ),
            ("PXSYNC_INWINK_CLIENT_ID".into(), inwink_options.client_id),
            (
                "PXSYNC_INWINK_CLIENT_SECRET".into(),
                inwink_options.client_secret,
            ),
            ("PXSYNC_INWINK_EVENT_ID".into(), inwink_options.event_id),
            ("PXSYNC_EMITTER_POLL_INTERVAL".into(), "100ms".into()),
        ]);
        env
    }

    fn cli(&self, args: &[&str]) -> String {
        let (ok, out, err) = run_command(CLI, args, &self.env());
        assert!(ok, "pxsync {args:?} failed:\n{out}\n{err}");
        out
    }

    fn import_mask(&self) {
        let path = self.dir.join("mask.csv");
        std::fs::write(
            &path,
            format!(
                "planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\n\
             Bannière 2x1 m,prd_banner_2x1,Bannière 2x1 m,{IW_BANNER}\n\
             Wi-Fi stand,opt_wifi,Wi-Fi stand,{IW_WIFI}\n\
             Stand nu 9 m²,prd_stand_9m2,,\n"
            ),
        )
        .unwrap();
        let out = self.cli(&[
            "mask",
            "import",
            "--event",
            "salon-sante-2026",
            path.to_str().unwrap(),
        ]);
        assert!(out.contains("2 mapped products"), "{out}");
    }

    fn start_services(&mut self) {
        let env = self.env();
        for (name, exe) in [
            ("ingestor", INGESTOR),
            ("projector", PROJECTOR),
            ("emitter", EMITTER),
        ] {
            self.services
                .push(Service::spawn(name, exe, &[], &env, &self.dir));
        }
    }

    /// The ingestor, the projector and two emitter processes, with `extra` settings.
    fn start_with_two_emitters(&mut self, extra: &[(&str, &str)]) {
        let mut env = self.env();
        // Each emitter keeps 6 orders in flight (two connections each, plus one).
        env.push(("PXSYNC_EMITTER_CONCURRENCY".into(), "6".into()));
        env.push(("PXSYNC_DATABASE_POOL_SIZE".into(), "14".into()));
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        for (name, exe) in [
            ("ingestor", INGESTOR),
            ("projector", PROJECTOR),
            ("emitter-1", EMITTER),
            ("emitter-2", EMITTER),
        ] {
            self.services
                .push(Service::spawn(name, exe, &[], &env, &self.dir));
        }
    }

    /// A generated salon on the simulators with the demo mask and products, migrated, the mask
    /// imported and the salon enabled.
    async fn generated_salon(&self, mask_path: &std::path::Path, orders: u32, seed: u64) {
        let products: Value = serde_json::from_str(
            &std::fs::read_to_string(mask_path.with_file_name("inwink-products.json")).unwrap(),
        )
        .unwrap();
        self.http
            .put(
                &format!("{}/_sim/products", self.inwink.base_url()),
                &products,
            )
            .await;
        self.http
            .post(
                &format!("{}/_sim/generate", self.planexpo.base_url()),
                &json!({"orders": orders, "seed": seed}),
            )
            .await;
        self.cli(&["migrate"]);
        self.cli(&[
            "mask",
            "import",
            "--event",
            "salon-sante-2026",
            mask_path.to_str().unwrap(),
        ]);
        self.cli(&["enable", "--event", "salon-sante-2026"]);
    }

    /// The version of the salon's mask in force, if any.
    async fn mask_version(&self) -> Option<i32> {
        self.ns
            .store
            .current_mask("salon-sante-2026")
            .await
            .unwrap()
            .map(|(v, _)| v)
    }

    async fn put_order(&self, o: &Value) {
        let id = o["id"].as_str().unwrap();
        self.http
            .put(&format!("{}/_sim/orders/{id}", self.planexpo.base_url()), o)
            .await;
    }

    async fn inwink_state(&self) -> Value {
        self.http
            .get(&format!("{}/_sim/state", self.inwink.base_url()))
            .await
    }

    async fn inwink_writes(&self) -> Vec<Value> {
        let calls = self
            .http
            .get(&format!("{}/_sim/calls", self.inwink.base_url()))
            .await;
        calls["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["method"] != "GET"
                    && !c["path"].as_str().unwrap_or("").ends_with("/query")
                    && c["path"] != "/oauth/token"
            })
            .cloned()
            .collect()
    }

    /// Waits up to 150 s for inwink to hold exactly `exp`, and returns inwink's state.
    async fn converged(&self, exp: &Expected) -> Value {
        let started = std::time::Instant::now();
        let converged = wait_for(Duration::from_secs(240), || async {
            differences(&self.inwink_state().await, exp).is_empty()
        })
        .await;
        let state = self.inwink_state().await;
        assert!(
            converged,
            "not converged after {:?}: {:?}\n{}",
            started.elapsed(),
            differences(&state, exp),
            self.logs()
        );
        state
    }

    fn logs(&self) -> String {
        self.services
            .iter()
            .map(|s| format!("--- {} ---\n{}", s.name, s.output()))
            .collect()
    }

    async fn finish(mut self) {
        for s in &mut self.services {
            s.kill();
        }
        self.ns.cleanup().await;
    }
}

fn partner_by_order<'a>(state: &'a Value, order: &str) -> Option<&'a Value> {
    state["partners"]
        .as_array()?
        .iter()
        .find(|p| p["planexpo_order_id"] == order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validated_orders_reach_inwink_through_nats_and_postgres() {
    let mut w = World::new("sys").await;
    w.cli(&["migrate"]);
    w.import_mask();
    let banner = |q| json!({"product_id": "prd_banner_2x1", "product_name": "Bannière 2x1 m", "quantity": q});
    let stand =
        json!({"product_id": "prd_stand_9m2", "product_name": "Stand nu 9 m²", "quantity": 1});
    let wifi = json!({"product_id": "opt_wifi", "product_name": "Wi-Fi stand", "quantity": 1});
    w.put_order(&order(
        "ord_A0001",
        "SX-1",
        "validated",
        "Acme Médical",
        "claire@acme.example",
        None,
        json!([banner(2), stand, wifi.clone(), banner(1)]),
    ))
    .await;
    w.put_order(&order(
        "ord_B0002",
        "SX-2",
        "validated",
        "Dupré & Fils",
        "Jean@Dupre.example",
        None,
        json!([banner(4)]),
    ))
    .await;
    w.put_order(&order(
        "ord_C0003",
        "SX-3",
        "validated",
        "Santé Ouest",
        "paul@ouest.example",
        None,
        json!([]),
    ))
    .await;
    w.put_order(&order(
        "ord_D0004",
        "SX-4",
        "draft",
        "Brouillon SARL",
        "x@brouillon.example",
        None,
        json!([banner(9)]),
    ))
    .await;
    w.put_order(&order(
        "ord_E0005",
        "SX-5",
        "validated",
        "Acme Filiale",
        "lea@filiale.example",
        Some("ord_A0001"),
        json!([wifi]),
    ))
    .await;
    w.start_services();

    // Disabled: everything reaches the log and the desired state, nothing reaches inwink.
    let store = w.ns.store.clone();
    let projected = wait_for(Duration::from_secs(30), || async {
        let s = store.status(Some("salon-sante-2026")).await.unwrap();
        s.first().is_some_and(|s| s.orders == 5)
    })
    .await;
    assert!(
        projected,
        "the five orders were not projected:\n{}",
        w.logs()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        w.inwink_writes().await.is_empty(),
        "a disabled salon got writes"
    );

    w.cli(&["enable", "--event", "salon-sante-2026"]);
    let converged = wait_for(Duration::from_secs(40), || async {
        let s = w.inwink_state().await;
        s["partners"].as_array().map_or(0, Vec::len) == 4
            && partner_by_order(&s, "ord_E0005").is_some_and(|p| !p["affiliatedToId"].is_null())
            && s["team_members"].as_array().map_or(0, Vec::len) == 4
            && partner_by_order(&s, "ord_A0001")
                .is_some_and(|p| p["products"][IW_BANNER] == 3 && p["products"][IW_WIFI] == 1)
            && partner_by_order(&s, "ord_E0005").is_some_and(|p| p["products"][IW_WIFI] == 1)
            && partner_by_order(&s, "ord_B0002").is_some_and(|p| p["products"][IW_BANNER] == 4)
            && s["participants"].as_array().map_or(0, Vec::len) == 4
    })
    .await;
    let state = w.inwink_state().await;
    assert!(
        converged,
        "inwink did not converge: {state:#}\n{}",
        w.logs()
    );

    // Field by field.
    let a = partner_by_order(&state, "ord_A0001").unwrap();
    assert_eq!(a["name"], "Acme Médical");
    assert_eq!(a["status"], "Published");
    assert_eq!(a["planexpo_public_order_id"], "SX-1");
    assert_eq!(a["emplacement"], "BA0001");
    assert_eq!(a["space"], "Hall 1");
    assert_eq!(a["aisle"], Value::Null);
    assert_eq!(a["website"], "https://acme.example");
    assert_eq!(
        a["address"],
        json!({"street": "12 rue de la Paix", "street2": null, "zipCode": "75002", "city": "Paris", "country": "FR"})
    );
    assert_eq!(a["affiliatedToId"], Value::Null);
    assert_eq!(
        a["products"],
        json!({IW_BANNER: 3, IW_WIFI: 1}),
        "lines of one product summed, the unmapped stand ignored"
    );
    let e = partner_by_order(&state, "ord_E0005").unwrap();
    assert_eq!(
        e["affiliatedToId"], a["id"],
        "the co-exhibitor points to its parent's partner"
    );
    assert_eq!(e["products"], json!({IW_WIFI: 1}));
    assert!(
        partner_by_order(&state, "ord_D0004").is_none(),
        "the draft produced nothing"
    );
    let b = partner_by_order(&state, "ord_B0002").unwrap();
    assert_eq!(b["products"], json!({IW_BANNER: 4}));

    let people = state["participants"].as_array().unwrap();
    assert_eq!(people.len(), 4);
    let jean = people
        .iter()
        .find(|p| {
            p["email"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("jean@dupre.example")
        })
        .unwrap();
    assert_eq!(
        jean["email"], "Jean@Dupre.example",
        "values are copied as Planexpo gives them"
    );
    assert_eq!(jean["lastname"], "Durand");
    assert_eq!(jean["firstname"], "Claire");
    assert_eq!(jean["phone1"], "+33 1 23 45 67 89");
    assert_eq!(jean["language"], "fr");
    assert_eq!(jean["jobTitle"], "Directrice");
    let links = state["team_members"].as_array().unwrap();
    assert!(links.iter().any(|l| l["exhibitorId"] == b["id"]
        && l["registeredId"] == jean["id"]
        && l["roles"] == json!(["Admin"])));
    assert_eq!(state["quantity_decrease_attempts"], 0);

    // Converged: two poll intervals with no Planexpo change bring no write.
    let writes = w.inwink_writes().await.len();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        w.inwink_writes().await.len(),
        writes,
        "writes without any change:\n{}",
        w.logs()
    );
    assert!(
        !w.inwink_writes().await.iter().any(|c| c["status"] == 409),
        "no 409 without faults"
    );

    // Without the drift sweep, a hand edit stays until the order's next update overwrites it.
    let c_id = partner_by_order(&w.inwink_state().await, "ord_C0003").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.http
        .send(
            reqwest::Method::PATCH,
            &format!("{}/_sim/exhibitor/{c_id}", w.inwink.base_url()),
            &json!({"name": "Edited by hand", "website": null}),
        )
        .await;
    let mut moved = order(
        "ord_C0003",
        "SX-3",
        "validated",
        "Santé Ouest",
        "paul@ouest.example",
        None,
        json!([]),
    );
    moved["stand"]["number"] = json!("C42");
    w.put_order(&moved).await;
    let overwritten = wait_for(Duration::from_secs(20), || async {
        let s = w.inwink_state().await;
        partner_by_order(&s, "ord_C0003").is_some_and(|p| {
            p["emplacement"] == "C42"
                && p["name"] == "Santé Ouest"
                && p["website"] == "https://acme.example"
        })
    })
    .await;
    assert!(
        overwritten,
        "the hand edit was not overwritten at the next update:\n{}",
        w.logs()
    );

    // A quantity lowered on Planexpo is refused, recorded, never sent.
    w.put_order(&order(
        "ord_B0002",
        "SX-2",
        "validated",
        "Dupré & Fils",
        "Jean@Dupre.example",
        None,
        json!([banner(1)]),
    ))
    .await;
    let refused = wait_for(Duration::from_secs(20), || async {
        let s = store.status(Some("salon-sante-2026")).await.unwrap();
        s[0].refused_decreases
            .iter()
            .any(|d| d.order_id == "ord_B0002" && d.floor == 4 && d.desired == 1)
    })
    .await;
    assert!(
        refused,
        "the refused decrease was not recorded:\n{}",
        w.logs()
    );
    let state = w.inwink_state().await;
    assert_eq!(
        partner_by_order(&state, "ord_B0002").unwrap()["products"],
        json!({IW_BANNER: 4})
    );
    assert_eq!(state["quantity_decrease_attempts"], 0);
    let status_text = w.cli(&["status", "--event", "salon-sante-2026"]);
    assert!(
        status_text.contains("refused decrease: order ord_B0002"),
        "{status_text}"
    );
    assert!(
        !status_text.contains("claire@"),
        "no personal data in the status: {status_text}"
    );

    // Disable takes effect before it returns.
    w.cli(&["disable", "--event", "salon-sante-2026"]);
    let before = w.inwink_writes().await.len();
    w.put_order(&order(
        "ord_C0003",
        "SX-3",
        "validated",
        "Santé Ouest renamed",
        "paul@ouest.example",
        None,
        json!([]),
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        w.inwink_writes().await.len(),
        before,
        "a write after disable returned"
    );
    w.finish().await;
}

/// The demo mask and inwink catalogue (scripts/demo), as (Planexpo product id → inwink id).
fn demo_mask() -> (
    std::path::PathBuf,
    std::collections::BTreeMap<String, String>,
) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo/mask.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mapped = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c.len() == 4 && !c[3].is_empty()).then(|| (c[1].to_owned(), c[3].to_owned()))
        })
        .collect();
    (path, mapped)
}

/// What inwink must hold for the Planexpo simulator's orders, computed independently of pxsync.
/// (company, parent order id, inwink product → quantity, contact e-mail key)
type ExpectedPartner = (
    String,
    Option<String>,
    std::collections::BTreeMap<String, u64>,
    String,
);

struct Expected {
    /// order id → what its partner must be
    partners: std::collections::BTreeMap<String, ExpectedPartner>,
    /// e-mail key → the winning order's contact (the most recently updated order, then the highest id)
    participants: std::collections::BTreeMap<String, Value>,
}

fn expected(
    planexpo_state: &Value,
    mapped: &std::collections::BTreeMap<String, String>,
) -> Expected {
    let mut partners = std::collections::BTreeMap::new();
    let mut participants: std::collections::BTreeMap<String, (String, String, Value)> =
        Default::default();
    for o in planexpo_state["orders"].as_array().unwrap() {
        if o["status"] != "validated" {
            continue;
        }
        let id = o["id"].as_str().unwrap().to_owned();
        let mut products = std::collections::BTreeMap::new();
        for l in o["lines"].as_array().unwrap() {
            if let Some(iw) = mapped.get(l["product_id"].as_str().unwrap()) {
                *products.entry(iw.clone()).or_insert(0) += l["quantity"].as_u64().unwrap();
            }
        }
        let email = o["booking_contact"]["email"]
            .as_str()
            .unwrap()
            .trim()
            .to_lowercase();
        let key = (o["updated_at"].as_str().unwrap().to_owned(), id.clone());
        let replace = participants
            .get(&email)
            .is_none_or(|(at, oid, _)| (at.clone(), oid.clone()) < key);
        if replace {
            participants.insert(email.clone(), (key.0, key.1, o["booking_contact"].clone()));
        }
        let parent = o["parent_order_id"].as_str().map(str::to_owned);
        partners.insert(
            id,
            (
                o["company"]["name"].as_str().unwrap().to_owned(),
                parent,
                products,
                email,
            ),
        );
    }
    Expected {
        partners,
        participants: participants
            .into_iter()
            .map(|(k, (_, _, c))| (k, c))
            .collect(),
    }
}

/// Checks inwink's state against the expectation; returns the differences.
fn differences(state: &Value, exp: &Expected) -> Vec<String> {
    let mut diffs = Vec::new();
    let partners = state["partners"].as_array().unwrap();
    if partners.len() != exp.partners.len() {
        diffs.push(format!(
            "{} partners, expected {}",
            partners.len(),
            exp.partners.len()
        ));
    }
    let people = state["participants"].as_array().unwrap();
    if people.len() != exp.participants.len() {
        diffs.push(format!(
            "{} participants, expected {}",
            people.len(),
            exp.participants.len()
        ));
    }
    let person_id = |email: &str| {
        people
            .iter()
            .find(|p| p["email"].as_str().unwrap().to_lowercase() == email)
            .map(|p| p["id"].clone())
    };
    let links = state["team_members"].as_array().unwrap();
    if links.len() != exp.partners.len() {
        diffs.push(format!(
            "{} team links, expected {}",
            links.len(),
            exp.partners.len()
        ));
    }
    for (order, (name, parent, products, email)) in &exp.partners {
        let Some(p) = partner_by_order(state, order) else {
            diffs.push(format!("{order}: no partner"));
            continue;
        };
        if p["name"] != name.as_str() || p["status"] != "Published" {
            diffs.push(format!("{order}: name or status differ"));
        }
        let want_parent = parent
            .as_ref()
            .and_then(|po| partner_by_order(state, po))
            .map(|pp| pp["id"].clone())
            .unwrap_or(Value::Null);
        if p["affiliatedToId"] != want_parent {
            diffs.push(format!(
                "{order}: affiliatedToId {} expected {want_parent}",
                p["affiliatedToId"]
            ));
        }
        let held: std::collections::BTreeMap<String, u64> = p["products"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        if &held != products {
            diffs.push(format!("{order}: products {held:?} expected {products:?}"));
        }
        let pid = person_id(email);
        if !links.iter().any(|l| {
            l["exhibitorId"] == p["id"]
                && Some(&l["registeredId"]) == pid.as_ref()
                && l["roles"] == json!(["Admin"])
        }) {
            diffs.push(format!(
                "{order}: no Admin team link to its booking contact"
            ));
        }
    }
    for (email, contact) in &exp.participants {
        let Some(p) = people
            .iter()
            .find(|p| p["email"].as_str().unwrap().to_lowercase() == *email)
        else {
            diffs.push("a booking contact has no participant".into());
            continue;
        };
        for (ours, theirs) in [
            ("lastname", "last_name"),
            ("firstname", "first_name"),
            ("phone1", "phone_1"),
            ("civility", "civility"),
            ("jobTitle", "job_title"),
            ("language", "preferred_language"),
        ] {
            if p[ours] != contact[theirs] {
                diffs.push(format!(
                    "participant {}: {ours} differs from the winning order's contact",
                    p["id"]
                ));
            }
        }
    }
    diffs
}

/// Under error_rate 0.2, after_effect_error_rate 0.1, a 20/s rate limit and 2-second tokens,
/// two emitter processes reach exactly the expected state: no duplicate, no decrease attempt.
/// Their backoff is capped at 4 s: with the default 30 s, the one or two orders that fail five
/// or six times in a row made the run's length vary from 40 s to nearly 4 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_emitters_reach_the_exact_state_through_inwink_faults() {
    let mut w = World::new("faults").await;
    let (mask_path, mapped) = demo_mask();
    w.generated_salon(&mask_path, 70, 7).await;
    w.http.post(&format!("{}/_sim/faults", w.inwink.base_url()), &json!({
        "error_rate": 0.2, "after_effect_error_rate": 0.1, "rate_limit_per_s": 20, "token_ttl_s": 2
    })).await;
    w.start_with_two_emitters(&[("PXSYNC_EMITTER_BACKOFF_MAX", "4s")]);
    let px = w
        .http
        .get(&format!("{}/_sim/state", w.planexpo.base_url()))
        .await;
    let exp = expected(&px, &mapped);
    assert!(exp.partners.len() >= 40, "a salon of realistic size");
    assert!(
        exp.partners.values().any(|p| p.1.is_some()),
        "with co-exhibitors"
    );
    let started = std::time::Instant::now();
    let state = w.converged(&exp).await;
    println!("converged in {:?} under faults", started.elapsed());
    assert_eq!(
        state["quantity_decrease_attempts"], 0,
        "inwink never received a lower quantity"
    );
    let calls = w
        .http
        .get(&format!("{}/_sim/calls", w.inwink.base_url()))
        .await;
    let statuses: Vec<u64> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["status"].as_u64())
        .collect();
    assert!(
        statuses.contains(&429) && statuses.iter().any(|s| *s >= 500),
        "the faults were exercised"
    );
    // Both emitter processes did work.
    for name in ["emitter-1", "emitter-2"] {
        let log = w.services.iter().find(|s| s.name == name).unwrap().output();
        assert!(
            log.contains("emitting to inwink"),
            "{name} did not start:\n{log}"
        );
    }
    let store = w.ns.store.clone();
    let status = store.status(Some("salon-sante-2026")).await.unwrap();
    assert_eq!(
        status[0].parked.len(),
        0,
        "nothing parked: {:?}",
        status[0].parked
    );
    w.finish().await;
}

/// A raw inwink API call as an operator's script would make it (for records made by hand).
async fn inwink_api(w: &World, method: reqwest::Method, path: &str, body: &Value) -> Value {
    let o = pxsync_sim::inwink::Options::default();
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{}/oauth/token", w.inwink.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &o.client_id),
            ("client_secret", &o.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = client
        .request(
            method,
            format!("{}/{}{path}", w.inwink.base_url(), o.event_id),
        )
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

/// Partners and participants deleted or edited by hand are healed; a partner created by hand
/// before the sync is adopted with `pxsync link`; through all of it, no decrease and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_and_hand_edits_on_inwink_are_healed() {
    let mut w = World::new("heal").await;
    w.cli(&["migrate"]);
    w.import_mask();
    let banner = |q| json!({"product_id": "prd_banner_2x1", "product_name": "Bannière 2x1 m", "quantity": q});
    let wifi = json!({"product_id": "opt_wifi", "product_name": "Wi-Fi stand", "quantity": 1});
    let parent = order(
        "ord_P0001",
        "SX-1",
        "validated",
        "Parent Santé",
        "parent@sante.example",
        None,
        json!([banner(6)]),
    );
    w.put_order(&parent).await;
    w.put_order(&order(
        "ord_K0001",
        "SX-2",
        "validated",
        "Enfant Un",
        "un@enfant.example",
        Some("ord_P0001"),
        json!([wifi.clone()]),
    ))
    .await;
    w.put_order(&order(
        "ord_K0002",
        "SX-3",
        "validated",
        "Enfant Deux",
        "deux@enfant.example",
        Some("ord_P0001"),
        json!([wifi]),
    ))
    .await;
    // Created by hand on inwink before the sync, and its order not validated yet.
    let by_hand = inwink_api(
        &w,
        reqwest::Method::POST,
        "/exhibitor",
        &json!({"name": "Laboratoires DUPRE & fils", "status": "Draft"}),
    )
    .await;
    w.put_order(&order(
        "ord_H0001",
        "SX-4",
        "submitted",
        "Laboratoires Dupré & Fils",
        "h@dupre.example",
        None,
        json!([banner(2)]),
    ))
    .await;
    w.cli(&["enable", "--event", "salon-sante-2026"]);
    let mut env = w.env();
    env.push(("PXSYNC_EXISTENCE_CHECK_INTERVAL".into(), "1s".into()));
    env.push(("PXSYNC_DRIFT_SWEEP_INTERVAL".into(), "1s".into()));
    for (name, exe) in [
        ("ingestor", INGESTOR),
        ("projector", PROJECTOR),
        ("emitter", EMITTER),
    ] {
        w.services
            .push(Service::spawn(name, exe, &[], &env, &w.dir));
    }
    let family_ok = |s: &Value| {
        let Some(p) = partner_by_order(s, "ord_P0001") else {
            return false;
        };
        ["ord_K0001", "ord_K0002"]
            .iter()
            .all(|k| partner_by_order(s, k).is_some_and(|c| c["affiliatedToId"] == p["id"]))
            && p["products"][IW_BANNER] == 6
            && s["team_members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["exhibitorId"] == p["id"])
    };
    assert!(
        wait_for(Duration::from_secs(30), || async {
            family_ok(&w.inwink_state().await)
        })
        .await,
        "first sync:\n{}",
        w.logs()
    );

    // The parent is deleted by hand (its products and team links go with it).
    let old = partner_by_order(&w.inwink_state().await, "ord_P0001").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        w.http
            .delete(&format!("{}/_sim/exhibitor/{old}", w.inwink.base_url()))
            .await
            / 100,
        2
    );
    let healed = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        family_ok(&s) && partner_by_order(&s, "ord_P0001").is_some_and(|p| p["id"] != old.as_str())
    })
    .await;
    assert!(
        healed,
        "the parent was not recreated with its children, products and link: {:#}\n{}",
        w.inwink_state().await,
        w.logs()
    );
    let p = partner_by_order(&w.inwink_state().await, "ord_P0001")
        .unwrap()
        .clone();
    assert_eq!(p["name"], "Parent Santé");
    assert_eq!(p["planexpo_public_order_id"], "SX-1");

    // Deleted again, then the order changes: the update finds it gone and recreates it.
    assert_eq!(
        w.http
            .delete(&format!(
                "{}/_sim/exhibitor/{}",
                w.inwink.base_url(),
                p["id"].as_str().unwrap()
            ))
            .await
            / 100,
        2
    );
    let mut raised = parent.clone();
    raised["lines"] = json!([banner(8)]);
    w.put_order(&raised).await;
    assert!(
        wait_for(Duration::from_secs(30), || async {
            let s = w.inwink_state().await;
            partner_by_order(&s, "ord_P0001").is_some_and(|p| p["products"][IW_BANNER] == 8)
                && ["ord_K0001", "ord_K0002"].iter().all(|k| {
                    partner_by_order(&s, k).unwrap()["affiliatedToId"]
                        == partner_by_order(&s, "ord_P0001").unwrap()["id"]
                })
        })
        .await,
        "recreated at the new quantity, children re-pointed:\n{}",
        w.logs()
    );

    // A participant deleted by hand is recreated and linked again.
    let state = w.inwink_state().await;
    let un = state["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["email"] == "un@enfant.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        w.http
            .delete(&format!("{}/_sim/registered/{un}", w.inwink.base_url()))
            .await
            / 100,
        2
    );
    let relinked = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        let Some(person) = s["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["email"] == "un@enfant.example")
        else {
            return false;
        };
        let child = partner_by_order(&s, "ord_K0001").unwrap();
        person["id"] != un.as_str()
            && s["team_members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["registeredId"] == person["id"] && l["exhibitorId"] == child["id"])
    })
    .await;
    assert!(
        relinked,
        "the participant was not recreated and relinked:\n{}",
        w.logs()
    );

    // A hand edit of a synchronised field is repaired by the drift sweep.
    let child = partner_by_order(&w.inwink_state().await, "ord_K0002").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.http
        .send(
            reqwest::Method::PATCH,
            &format!("{}/_sim/exhibitor/{child}", w.inwink.base_url()),
            &json!({"name": "Renamed by hand", "emplacement": "Z99"}),
        )
        .await;
    let repaired = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        partner_by_order(&s, "ord_K0002")
            .is_some_and(|p| p["name"] == "Enfant Deux" && p["emplacement"] == "BK0002")
    })
    .await;
    assert!(repaired, "the hand edit was not repaired:\n{}", w.logs());

    // The pre-existing partner is listed as a likely match, adopted, then filled at validation.
    let store = w.ns.store.clone();
    let listed = wait_for(Duration::from_secs(20), || async {
        store.status(Some("salon-sante-2026")).await.unwrap()[0]
            .likely_matches
            .iter()
            .any(|m| m.order_id == "ord_H0001")
    })
    .await;
    assert!(listed, "the likely match was not listed");
    let by_hand_id = by_hand["id"].as_str().unwrap();
    let text = w.cli(&["status", "--event", "salon-sante-2026"]);
    assert!(
        text.contains(&format!(
            "pxsync link --event salon-sante-2026 --order ord_H0001 --partner {by_hand_id}"
        )),
        "{text}"
    );
    w.cli(&[
        "link",
        "--event",
        "salon-sante-2026",
        "--order",
        "ord_H0001",
        "--partner",
        by_hand_id,
    ]);
    w.put_order(&order(
        "ord_H0001",
        "SX-4",
        "validated",
        "Laboratoires Dupré & Fils",
        "h@dupre.example",
        None,
        json!([banner(2)]),
    ))
    .await;
    let adopted = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        s["partners"].as_array().unwrap().iter().any(|p| {
            p["id"] == by_hand_id
                && p["planexpo_order_id"] == "ord_H0001"
                && p["status"] == "Published"
                && p["products"][IW_BANNER] == 2
        })
    })
    .await;
    assert!(adopted, "the adopted partner was not filled:\n{}", w.logs());

    let state = w.inwink_state().await;
    assert_eq!(
        state["partners"].as_array().unwrap().len(),
        4,
        "no duplicate partner: {state:#}"
    );
    assert_eq!(state["quantity_decrease_attempts"], 0);
    let status = store.status(Some("salon-sante-2026")).await.unwrap();
    let kinds: Vec<&str> = status[0].heals.iter().map(|h| h.kind.as_str()).collect();
    for kind in [
        "partner_deleted",
        "participant_deleted",
        "partner_repaired",
        "partner_adopted",
    ] {
        assert!(kinds.contains(&kind), "heal {kind} not recorded: {kinds:?}");
    }
    w.finish().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Each service answers /healthz, /readyz and /metrics on its own PXSYNC_HTTP_ADDR, and exits 0
/// on SIGTERM within its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_report_health_and_metrics_and_stop_on_sigterm() {
    let mut w = World::new("ops").await;
    w.cli(&["migrate"]);
    w.import_mask();
    w.cli(&["enable", "--event", "salon-sante-2026"]);
    w.put_order(&order(
        "ord_A0001",
        "SX-1",
        "validated",
        "Acme Médical",
        "claire@acme.example",
        None,
        json!([]),
    ))
    .await;
    let mut ports = Vec::new();
    for (name, exe) in [
        ("ingestor", INGESTOR),
        ("projector", PROJECTOR),
        ("emitter", EMITTER),
    ] {
        let port = free_port();
        let mut env = w.env();
        env.push(("PXSYNC_HTTP_ADDR".into(), format!("127.0.0.1:{port}")));
        env.push(("PXSYNC_SHUTDOWN_GRACE".into(), "3s".into()));
        w.services
            .push(Service::spawn(name, exe, &[], &env, &w.dir));
        ports.push(port);
    }
    let client = reqwest::Client::new();
    for port in &ports {
        let base = format!("http://127.0.0.1:{port}");
        let up = wait_for(Duration::from_secs(20), || async {
            client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(up, "{base}/readyz not ready:\n{}", w.logs());
        assert_eq!(
            client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let metrics_url = format!("http://127.0.0.1:{}/metrics", ports[2]);
    let synced = wait_for(Duration::from_secs(20), || async {
        let text = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        text.contains("pxsync_orders{event=\"salon-sante-2026\",state=\"done\"} 1")
            && text.contains("pxsync_inwink_calls_total{event=\"salon-sante-2026\",operation=\"create_partner\",status=\"201\"} 1")
    })
    .await;
    let text = client
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(synced, "metrics:\n{text}\n{}", w.logs());
    assert!(
        text.contains("# TYPE pxsync_inwink_calls_total counter"),
        "{text}"
    );
    assert!(!text.contains("claire"), "no personal data in metrics");
    let projector_metrics = client
        .get(format!("http://127.0.0.1:{}/metrics", ports[1]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        projector_metrics.contains("\npxsync_projector_pending 0\n"),
        "consumer lag: {projector_metrics}"
    );
    for s in &mut w.services {
        let status = s.terminate(Duration::from_secs(10));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{} did not exit 0 on SIGTERM:\n{}",
            s.name,
            s.output()
        );
    }
    w.finish().await;
}

/// Two salons from one PXSYNC_CONFIG file, two ingestor replicas: each salon is polled by one
/// replica at a time, and when a replica is killed the other takes over within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_salons_from_a_config_file_survive_the_loss_of_an_ingestor_replica() {
    let ns = TestNamespace::new("multi").await;
    let http = Http::default();
    let dir = scratch_dir("multi");
    let salons = [
        ("salon-nord", "5a0e9c8b-1111-4e6f-9a7b-1c2d3e4f5a6b"),
        ("salon-sud", "5a0e9c8b-2222-4e6f-9a7b-1c2d3e4f5a6b"),
    ];
    let mut sims = Vec::new();
    let mut config = Vec::new();
    for (slug, inwink_id) in salons {
        let px = pxsync_sim::planexpo::spawn(pxsync_sim::planexpo::Options {
            api_key: format!("key-{slug}"),
            event: slug.into(),
        })
        .await
        .unwrap();
        let iw = pxsync_sim::inwink::spawn(pxsync_sim::inwink::Options {
            event_id: inwink_id.into(),
            ..Default::default()
        })
        .await
        .unwrap();
        http.put(
            &format!("{}/_sim/products", iw.base_url()),
            &json!({"data": [{"id": IW_BANNER, "name": "Bannière 2x1 m"}]}),
        )
        .await;
        config.push(json!({
            "planexpo_event": slug, "planexpo_base_url": px.base_url(), "planexpo_api_key": {"env": format!("KEY_{}", slug.replace('-', "_").to_uppercase())},
            "inwink_event_id": inwink_id, "inwink_base_url": iw.base_url(), "inwink_token_url": format!("{}/oauth/token", iw.base_url()),
            "inwink_client_id": "pxsync-sim", "inwink_client_secret": {"env": "INWINK_SECRET"}, "poll_interval": "300ms"
        }));
        sims.push((slug, inwink_id, px, iw));
    }
    let config_path = dir.join("salons.json");
    std::fs::write(&config_path, json!({"salons": config}).to_string()).unwrap();
    let mut env = ns.env();
    env.extend([
        (
            "PXSYNC_CONFIG".to_owned(),
            config_path.display().to_string(),
        ),
        ("KEY_SALON_NORD".into(), "key-salon-nord".into()),
        ("KEY_SALON_SUD".into(), "key-salon-sud".into()),
        ("INWINK_SECRET".into(), "inwink-sim-secret".into()),
        ("PXSYNC_EMITTER_POLL_INTERVAL".into(), "100ms".into()),
    ]);
    let mask = dir.join("mask.csv");
    std::fs::write(&mask, format!("planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\nBannière 2x1 m,prd_banner_2x1,Bannière 2x1 m,{IW_BANNER}\n")).unwrap();
    for (slug, inwink_id, _, _) in &sims {
        let mut e = ns.env();
        e.push(("PXSYNC_INWINK_EVENT_ID".into(), inwink_id.to_string()));
        let (ok, out, err) = run_command(
            CLI,
            &["mask", "import", "--event", slug, mask.to_str().unwrap()],
            &e,
        );
        assert!(ok, "{out}{err}");
        let (ok, out, err) = run_command(CLI, &["enable", "--event", slug], &e);
        assert!(ok, "{out}{err}");
    }
    let banner =
        json!([{"product_id": "prd_banner_2x1", "product_name": "Bannière 2x1 m", "quantity": 2}]);
    let put = |i: usize, id: String| {
        let (slug, _, px, _) = &sims[i];
        let mut o = order(
            &id,
            &format!("P-{id}"),
            "validated",
            &format!("Société {id}"),
            &format!("{id}@example.fr"),
            None,
            banner.clone(),
        );
        o["event"] = json!(slug);
        let url = format!("{}/_sim/orders/{id}", px.base_url());
        let http = &http;
        async move { http.put(&url, &o).await }
    };
    for i in 0..2 {
        for k in 0..3 {
            put(i, format!("ord_{i}{k:04}")).await;
        }
    }
    let logs = |services: &[Service]| {
        services
            .iter()
            .map(|s| format!("--- {} ---\n{}", s.name, s.output()))
            .collect::<String>()
    };
    // The first replica takes both salons; the second one then stands by for both.
    let mut services = vec![Service::spawn("ingestor-1", INGESTOR, &[], &env, &dir)];
    let first_polls = wait_for(Duration::from_secs(20), || async {
        services[0]
            .output()
            .matches("polling the Planexpo feed")
            .count()
            == 2
    })
    .await;
    assert!(
        first_polls,
        "the first replica did not take both salons:\n{}",
        logs(&services)
    );
    services.push(Service::spawn("ingestor-2", INGESTOR, &[], &env, &dir));
    services.push(Service::spawn("projector", PROJECTOR, &[], &ns.env(), &dir));
    services.push(Service::spawn("emitter", EMITTER, &[], &env, &dir));
    let partners = |i: usize| {
        let url = format!("{}/_sim/state", sims[i].3.base_url());
        let http = &http;
        async move {
            http.get(&url).await["partners"]
                .as_array()
                .map_or(0, Vec::len)
        }
    };
    let both = wait_for(Duration::from_secs(30), || async {
        partners(0).await == 3 && partners(1).await == 3
    })
    .await;
    assert!(both, "both salons did not sync:\n{}", logs(&services));
    let standby = wait_for(Duration::from_secs(10), || async {
        services[1]
            .output()
            .matches("another ingestor polls this salon")
            .count()
            >= 2
    })
    .await;
    assert!(
        standby,
        "the second replica does not stand by for both salons:\n{}",
        logs(&services)
    );
    assert!(
        !services[1].output().contains("polling the Planexpo feed"),
        "two replicas poll one salon"
    );

    services[0].kill();
    put(0, "ord_09999".into()).await;
    put(1, "ord_19999".into()).await;
    let taken_over = wait_for(Duration::from_secs(20), || async {
        partners(0).await == 4 && partners(1).await == 4
    })
    .await;
    assert!(
        taken_over,
        "the surviving replica did not take over:\n{}",
        logs(&services)
    );
    assert_eq!(
        ns.store.event_log_count(None).await.unwrap(),
        8,
        "each change exactly once"
    );
    for s in &mut services {
        s.kill();
    }
    ns.cleanup().await;
}

/// Replaces inwink's ids in a text by the dry run's placeholders.
fn placeholders(text: &str, ids: &[(String, String)]) -> String {
    let mut t = text
        .replace("%7B", "{")
        .replace("%7D", "}")
        .replace("%3A", ":");
    for (id, placeholder) in ids {
        t = t.replace(id.as_str(), placeholder);
    }
    t
}

/// The dry run lists exactly the writes a real run then sends (method, path and body, with ids
/// as placeholders), and writes nothing itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_shows_exactly_what_enable_then_writes() {
    let mut w = World::new("dry").await;
    w.cli(&["migrate"]);
    w.import_mask();
    let line = |p: &str, q| json!({"product_id": p, "product_name": p, "quantity": q});
    let orders = [
        order(
            "ord_A0001",
            "SX-1",
            "validated",
            "Acme Médical",
            "claire@acme.example",
            None,
            json!([line("prd_banner_2x1", 2), line("opt_wifi", 1)]),
        ),
        order(
            "ord_B0002",
            "SX-2",
            "validated",
            "Dupré & Fils",
            "jean@dupre.example",
            None,
            json!([line("prd_banner_2x1", 4)]),
        ),
        order(
            "ord_C0003",
            "SX-3",
            "validated",
            "Santé Ouest",
            "paul@ouest.example",
            None,
            json!([]),
        ),
        order(
            "ord_D0004",
            "SX-4",
            "submitted",
            "Brouillon",
            "d@brouillon.example",
            None,
            json!([]),
        ),
    ];
    for o in &orders {
        w.put_order(o).await;
    }
    let env = w.env();
    for (name, exe) in [("ingestor", INGESTOR), ("projector", PROJECTOR)] {
        w.services
            .push(Service::spawn(name, exe, &[], &env, &w.dir));
    }
    let store = w.ns.store.clone();
    assert!(
        wait_for(Duration::from_secs(20), || async {
            store.order_ids("salon-sante-2026").await.unwrap().len() == 4
        })
        .await
    );
    let dry: Value =
        serde_json::from_str(&w.cli(&["dry-run", "--event", "salon-sante-2026", "--json"]))
            .unwrap();
    assert_eq!(
        dry["unchanged"], 1,
        "the submitted order has nothing to write: {dry:#}"
    );
    let mut planned: Vec<String> = dry["orders"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["writes"].as_array().unwrap().clone())
        .map(|wr| {
            placeholders(
                &format!(
                    "{} {} {}",
                    wr["method"].as_str().unwrap(),
                    wr["path"].as_str().unwrap(),
                    wr["body"]
                ),
                &[],
            )
        })
        .collect();
    assert_eq!(
        planned.len(),
        3 * 3 + 3,
        "3 partners, 3 participants, 3 links, 3 quantities: {planned:#?}"
    );
    assert!(
        w.inwink_writes().await.is_empty(),
        "the dry run wrote nothing"
    );
    let human = w.cli(&["dry-run", "--event", "salon-sante-2026"]);
    assert!(
        human.contains("POST /{eventId}/exhibitor  create_partner \"Acme Médical\""),
        "{human}"
    );
    assert!(
        !human.contains("claire@"),
        "no personal data in the dry run's text: {human}"
    );

    w.cli(&["enable", "--event", "salon-sante-2026"]);
    w.services
        .push(Service::spawn("emitter", EMITTER, &[], &env, &w.dir));
    assert!(
        wait_for(Duration::from_secs(30), || async {
            w.inwink_writes().await.len() >= planned.len()
        })
        .await,
        "{}",
        w.logs()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let state = w.inwink_state().await;
    let mut ids = Vec::new();
    for o in &orders[..3] {
        let id = o["id"].as_str().unwrap();
        let p = partner_by_order(&state, id).unwrap();
        ids.push((
            p["id"].as_str().unwrap().to_owned(),
            format!("{{partner:{id}}}"),
        ));
        let email = o["booking_contact"]["email"].as_str().unwrap();
        let person = state["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["email"] == email)
            .unwrap();
        ids.push((
            person["id"].as_str().unwrap().to_owned(),
            format!("{{participant:{id}}}"),
        ));
    }
    let mut sent: Vec<String> = w
        .inwink_writes()
        .await
        .iter()
        .map(|c| {
            placeholders(
                &format!(
                    "{} {} {}",
                    c["method"].as_str().unwrap(),
                    c["path"].as_str().unwrap(),
                    c["body"]
                ),
                &ids,
            )
        })
        .collect();
    planned.sort();
    sent.sort();
    assert_eq!(
        sent, planned,
        "the real run sent exactly what the dry run listed"
    );
    w.finish().await;
}

/// A local OTLP/HTTP endpoint that keeps the bodies it receives.
async fn otlp_capture() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let keep = move |body: axum::body::Bytes| {
        let kept = kept.clone();
        async move {
            kept.lock().unwrap().push(body.to_vec());
            axum::http::StatusCode::OK
        }
    };
    // Traces and metrics land in the same list: a test looks for bytes, not for a shape.
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(keep.clone()))
        .route("/v1/metrics", axum::routing::post(keep));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// One order's change is one trace across the three processes (the context crosses NATS), the
/// recorded inwink calls keep its trace id, and at RUST_LOG=trace no name, e-mail or phone of
/// the salon reaches the logs or the exported spans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_is_one_trace_and_no_personal_data_leaks() {
    let mut w = World::new("otel").await;
    let (otlp, bodies) = otlp_capture().await;
    let (mask_path, _) = demo_mask();
    w.generated_salon(&mask_path, 25, 11).await;
    let mut env = w.env();
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), otlp.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into()),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL".into(), "300".into()),
        ("RUST_LOG".into(), "trace".into()),
    ]);
    for (name, exe) in [
        ("ingestor", INGESTOR),
        ("projector", PROJECTOR),
        ("emitter", EMITTER),
    ] {
        w.services
            .push(Service::spawn(name, exe, &[], &env, &w.dir));
    }
    let px = w
        .http
        .get(&format!("{}/_sim/state", w.planexpo.base_url()))
        .await;
    let validated: Vec<String> = px["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "validated")
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    let synced = wait_for(Duration::from_secs(40), || async {
        let s = w.inwink_state().await;
        validated
            .iter()
            .all(|id| partner_by_order(&s, id).is_some())
    })
    .await;
    assert!(synced, "the salon did not sync:\n{}", w.logs());
    // The trace of one order's change.
    let order = &validated[0];
    let client = w.ns.store.client().await.unwrap();
    let tp: String = client
        .query_one("SELECT traceparent FROM event_log WHERE order_id = $1 AND kind = 'order.observed' ORDER BY position DESC LIMIT 1", &[order])
        .await
        .unwrap()
        .get(0);
    let trace_hex = tp.split('-').nth(1).unwrap().to_owned();
    let trace_bytes = hex::decode(&trace_hex).unwrap();
    let recorded: Vec<Option<String>> = client
        .query(
            "SELECT trace_id FROM inwink_calls WHERE order_id = $1",
            &[order],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !recorded.is_empty()
            && recorded
                .iter()
                .all(|t| t.as_deref() == Some(trace_hex.as_str())),
        "each inwink call keeps the trace id: {recorded:?}"
    );
    for s in &mut w.services {
        assert_eq!(
            s.terminate(Duration::from_secs(10)).and_then(|c| c.code()),
            Some(0),
            "{}",
            s.output()
        );
    }
    let bodies = bodies.lock().unwrap().clone();
    for service in ["pxsync-ingestor", "pxsync-projector", "pxsync-emitter"] {
        assert!(
            bodies
                .iter()
                .any(|b| contains(b, service.as_bytes()) && contains(b, &trace_bytes)),
            "no span of {service} in trace {trace_hex} among {} exports",
            bodies.len()
        );
    }
    for metric in [
        "pxsync_orders",
        "pxsync_inwink_calls",
        "pxsync_projector_pending",
    ] {
        assert!(
            bodies.iter().any(|b| contains(b, metric.as_bytes())),
            "metric {metric} was not exported over OTLP"
        );
    }
    // No personal data anywhere.
    let logs = w.logs();
    assert!(
        logs.contains("DEBUG batch committed"),
        "verbose logging was on"
    );
    let mut personal = Vec::new();
    for o in px["orders"].as_array().unwrap() {
        let c = &o["booking_contact"];
        for f in ["last_name", "first_name", "email", "phone_1", "phone_2"] {
            if let Some(v) = c[f].as_str().filter(|v| v.chars().count() >= 5) {
                personal.push(v.to_owned());
            }
        }
    }
    assert!(personal.len() > 40);
    for v in &personal {
        assert!(
            !logs.contains(v.as_str()),
            "a personal value reached the logs"
        );
        assert!(
            !bodies.iter().any(|b| contains(b, v.as_bytes())),
            "a personal value reached the exported spans"
        );
    }
    w.finish().await;
}

/// The emitter's scenarios: a co-exhibitor validated before its parent, a cancellation after
/// validation and a re-validation, a changed contact e-mail, and quantities 10 → 15 → 5 → 20
/// with a removed line: inwink ends at the maximum, the refusals are recorded, never a lower PUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emitter_scenarios_end_in_the_expected_state() {
    let mut w = World::new("scen").await;
    w.cli(&["migrate"]);
    w.import_mask();
    w.cli(&["enable", "--event", "salon-sante-2026"]);
    let banner = |q| json!({"product_id": "prd_banner_2x1", "product_name": "Bannière 2x1 m", "quantity": q});
    let wifi = json!({"product_id": "opt_wifi", "product_name": "Wi-Fi stand", "quantity": 1});
    let parent = |status| {
        order(
            "ord_P0001",
            "SX-1",
            status,
            "Parent",
            "p@parent.example",
            None,
            json!([]),
        )
    };
    w.put_order(&parent("submitted")).await;
    w.put_order(&order(
        "ord_K0001",
        "SX-2",
        "validated",
        "Enfant",
        "k@enfant.example",
        Some("ord_P0001"),
        json!([]),
    ))
    .await;
    let cancel = |status| {
        order(
            "ord_C0001",
            "SX-3",
            status,
            "Annulé",
            "c@annule.example",
            None,
            json!([]),
        )
    };
    w.put_order(&cancel("validated")).await;
    let contact = |email: &str| {
        order(
            "ord_M0001",
            "SX-4",
            "validated",
            "Mail",
            email,
            None,
            json!([]),
        )
    };
    w.put_order(&contact("old@mail.example")).await;
    let quantities = |lines: Value| {
        order(
            "ord_Q0001",
            "SX-5",
            "validated",
            "Quantités",
            "q@quant.example",
            None,
            lines,
        )
    };
    w.put_order(&quantities(json!([banner(10), wifi.clone()])))
        .await;
    w.start_services();
    let settled = |cond: Box<dyn Fn(&Value) -> bool>| {
        let w = &w;
        async move {
            wait_for(Duration::from_secs(30), || async {
                cond(&w.inwink_state().await)
            })
            .await
        }
    };
    let q = |s: &Value, p: &str| {
        partner_by_order(s, "ord_Q0001").and_then(|x| x["products"][p].as_u64())
    };

    // The child exists without its parent, unlinked; the parent is not created by the child.
    assert!(
        settled(Box::new(
            |s| partner_by_order(s, "ord_K0001").is_some() && q(s, IW_BANNER) == Some(10)
        ))
        .await,
        "{}",
        w.logs()
    );
    let s = w.inwink_state().await;
    assert!(
        partner_by_order(&s, "ord_P0001").is_none(),
        "a child never creates its parent"
    );
    assert_eq!(
        partner_by_order(&s, "ord_K0001").unwrap()["affiliatedToId"],
        Value::Null
    );
    // The parent is validated: the child is linked to it.
    w.put_order(&parent("validated")).await;
    assert!(
        settled(Box::new(|s| partner_by_order(s, "ord_P0001").is_some_and(
            |p| partner_by_order(s, "ord_K0001").unwrap()["affiliatedToId"] == p["id"]
        )))
        .await,
        "the child was not linked once its parent existed:\n{}",
        w.logs()
    );

    // Cancelled after validation: unpublished (Draft), never deleted; re-validated: Published.
    w.put_order(&cancel("cancelled")).await;
    assert!(
        settled(Box::new(
            |s| partner_by_order(s, "ord_C0001").is_some_and(|p| p["status"] == "Draft")
        ))
        .await
    );
    w.put_order(&cancel("validated")).await;
    assert!(
        settled(Box::new(
            |s| partner_by_order(s, "ord_C0001").is_some_and(|p| p["status"] == "Published")
        ))
        .await
    );

    // A changed e-mail is another participant, created and linked; the old one is left alone.
    w.put_order(&contact("new@mail.example")).await;
    let linked_new = settled(Box::new(|s| {
        let m = partner_by_order(s, "ord_M0001").unwrap();
        let people = s["participants"].as_array().unwrap();
        let new = people.iter().find(|p| p["email"] == "new@mail.example");
        new.is_some_and(|n| {
            s["team_members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["exhibitorId"] == m["id"] && l["registeredId"] == n["id"])
        }) && people.iter().any(|p| p["email"] == "old@mail.example")
    }))
    .await;
    assert!(linked_new, "{}", w.logs());

    // 10 → 15 → 5 → 20, and the Wi-Fi line removed.
    w.put_order(&quantities(json!([banner(15), wifi.clone()])))
        .await;
    assert!(settled(Box::new(|s| q(s, IW_BANNER) == Some(15))).await);
    w.put_order(&quantities(json!([banner(5), wifi]))).await;
    let store = w.ns.store.clone();
    let refused = |floor: i32, desired: i32, product: &'static str| {
        let store = store.clone();
        async move {
            wait_for(Duration::from_secs(20), || async {
                store.status(Some("salon-sante-2026")).await.unwrap()[0]
                    .refused_decreases
                    .iter()
                    .any(|d| {
                        d.order_id == "ord_Q0001"
                            && d.product_id == product
                            && d.floor == floor
                            && d.desired == desired
                    })
            })
            .await
        }
    };
    assert!(
        refused(15, 5, IW_BANNER).await,
        "15 → 5 refused and recorded"
    );
    w.put_order(&quantities(json!([banner(20)]))).await;
    assert!(settled(Box::new(|s| q(s, IW_BANNER) == Some(20))).await);
    assert!(
        refused(1, 0, IW_WIFI).await,
        "the removed line is a refused decrease to 0"
    );
    let s = w.inwink_state().await;
    assert_eq!(q(&s, IW_WIFI), Some(1), "inwink keeps the Wi-Fi");
    assert_eq!(s["quantity_decrease_attempts"], 0, "never a lower PUT");
    let calls = w
        .http
        .get(&format!("{}/_sim/calls", w.inwink.base_url()))
        .await;
    assert!(
        !calls["calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["method"] == "DELETE"),
        "nothing is ever deleted"
    );
    // The audit tells the story: revisions, calls, the refusals; and the log verifies.
    let story = w.cli(&["audit", "order", "ord_Q0001", "--event", "salon-sante-2026"]);
    for line in [
        "Planexpo revision 1 observed (validated); changed: first_seen, validated",
        "changed: lines",
        "decrease refused for product",
        "inwink set_quantity PUT /{eventId}/exhibitor/{id}/products/{productId}: 200 → applied",
    ] {
        assert!(story.contains(line), "the audit lacks {line:?}:\n{story}");
    }
    assert!(
        !story.contains("q@quant"),
        "no personal data in the audit: {story}"
    );
    let verified = w.cli(&["audit", "verify"]);
    assert!(
        verified.contains("every order's hash chain is intact"),
        "{verified}"
    );
    w.finish().await;
}

/// A pilot writes only the named orders; `enable` without `--orders` then opens the salon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pilot_writes_only_its_orders_until_the_salon_opens() {
    let mut w = World::new("pilot").await;
    w.cli(&["migrate"]);
    w.import_mask();
    for (id, company) in [
        ("ord_A0001", "Pilote Un"),
        ("ord_B0002", "Pilote Deux"),
        ("ord_C0003", "Après"),
    ] {
        w.put_order(&order(
            id,
            id,
            "validated",
            company,
            &format!("{}@pilot.example", &id[4..]),
            None,
            json!([]),
        ))
        .await;
    }
    let out = w.cli(&[
        "enable",
        "--event",
        "salon-sante-2026",
        "--orders",
        "ord_A0001,ord_B0002",
    ]);
    assert!(out.contains("pilot enabled"), "{out}");
    w.start_services();
    let pilots = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        partner_by_order(&s, "ord_A0001").is_some() && partner_by_order(&s, "ord_B0002").is_some()
    })
    .await;
    assert!(pilots, "{}", w.logs());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        partner_by_order(&w.inwink_state().await, "ord_C0003").is_none(),
        "an order outside the pilot was written"
    );
    assert!(
        w.cli(&["status", "--event", "salon-sante-2026"])
            .contains("PILOT: only orders ord_A0001, ord_B0002 are written")
    );
    w.cli(&["enable", "--event", "salon-sante-2026"]);
    let opened = wait_for(Duration::from_secs(30), || async {
        partner_by_order(&w.inwink_state().await, "ord_C0003").is_some()
    })
    .await;
    assert!(opened, "the whole salon did not open:\n{}", w.logs());
    w.finish().await;
}

/// The preflight: technical problems block `enable` (the salon stays disabled) and say what to
/// fix; organisational ones only warn, unless --strict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preflight_blocks_enable_on_technical_problems_only() {
    let w = World::new("preflight").await;
    w.cli(&["migrate"]);
    let path = w.dir.join("broken.csv");
    std::fs::write(&path, "planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\nBannière 2x1 m,prd_banner_2x1,Bannière,00000000-0000-4000-8000-000000000000\n").unwrap();
    w.cli(&[
        "mask",
        "import",
        "--event",
        "salon-sante-2026",
        path.to_str().unwrap(),
    ]);
    let (ok, out, err) = run_command(CLI, &["enable", "--event", "salon-sante-2026"], &w.env());
    assert!(
        !ok,
        "a mask naming an unknown inwink product must block enable: {out}{err}"
    );
    assert!(err.contains("[FAIL] mask: row 2: inwink product 00000000-0000-4000-8000-000000000000 is not a partner product of the event"), "{err}");
    assert!(
        !w.ns
            .store
            .salon("salon-sante-2026")
            .await
            .unwrap()
            .unwrap()
            .enabled,
        "the salon stays disabled"
    );
    let mut bad_secret = w.env();
    bad_secret.push(("PXSYNC_INWINK_CLIENT_SECRET".into(), "wrong".into()));
    let (ok, out, _) = run_command(
        CLI,
        &["preflight", "--event", "salon-sante-2026"],
        &bad_secret,
    );
    assert!(!ok);
    assert!(
        out.contains("[FAIL] inwink")
            && out.contains("fix: check PXSYNC_INWINK_CLIENT_ID, PXSYNC_INWINK_CLIENT_SECRET"),
        "{out}"
    );
    assert!(!out.contains("wrong"), "the secret is not echoed: {out}");
    // A correct mask: only organisational warnings (no orders yet), so enable goes on; --strict blocks.
    w.import_mask();
    let (ok, _, err) = run_command(
        CLI,
        &["enable", "--event", "salon-sante-2026", "--strict"],
        &w.env(),
    );
    assert!(
        !ok && err.contains("[WARN] validated orders: 0 real validated orders"),
        "{err}"
    );
    let (ok, out, err) = run_command(CLI, &["enable", "--event", "salon-sante-2026"], &w.env());
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("[ok  ] mask") && err.contains("[ok  ] catalogue fingerprints"),
        "{err}"
    );
    assert!(
        w.ns.store
            .salon("salon-sante-2026")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    // Ids left empty are resolved from the catalogues by exact name; a name matching nothing
    // is an error naming the row, and nothing is imported.
    let by_name = w.dir.join("by-name.csv");
    std::fs::write(&by_name, "planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\nBannière 2x1 m,,Bannière 2x1 m,\nWi-Fi stand,,Wi-Fi stand,\n").unwrap();
    let out = w.cli(&[
        "mask",
        "import",
        "--event",
        "salon-sante-2026",
        by_name.to_str().unwrap(),
    ]);
    assert!(
        out.contains("mask version 3 imported for salon-sante-2026: 2 mapped products"),
        "{out}"
    );
    let (_, mask) =
        w.ns.store
            .current_mask("salon-sante-2026")
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        mask.inwink_product("prd_banner_2x1")
            .unwrap()
            .inwink_product_id,
        IW_BANNER
    );
    std::fs::write(&by_name, "planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\nBannière 3x1 m,,Bannière 2x1 m,\n").unwrap();
    let (ok, _, err) = run_command(
        CLI,
        &[
            "mask",
            "import",
            "--event",
            "salon-sante-2026",
            by_name.to_str().unwrap(),
        ],
        &w.env(),
    );
    assert!(
        !ok && err.contains("row 2, column A: no Planexpo product is named \"Bannière 3x1 m\""),
        "{err}"
    );
    assert_eq!(
        w.ns.store
            .current_mask("salon-sante-2026")
            .await
            .unwrap()
            .unwrap()
            .0,
        3,
        "nothing imported"
    );
    w.finish().await;
}

/// A mapped product deleted on inwink after go-live breaks that mapping only: one record says
/// which mask row to fix, its lines wait, the order's other products keep syncing, nothing is
/// parked or recreated; a mask re-import clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_product_breaks_its_mapping_only() {
    let mut w = World::new("broken").await;
    w.cli(&["migrate"]);
    w.import_mask();
    w.cli(&["enable", "--event", "salon-sante-2026"]);
    // Someone deletes the Wi-Fi product on inwink after set-up.
    w.http
        .put(
            &format!("{}/_sim/products", w.inwink.base_url()),
            &json!({"data": [{"id": IW_BANNER, "name": "Bannière 2x1 m"}]}),
        )
        .await;
    let lines = json!([
        {"product_id": "prd_banner_2x1", "product_name": "Bannière 2x1 m", "quantity": 3},
        {"product_id": "opt_wifi", "product_name": "Wi-Fi stand", "quantity": 1}
    ]);
    w.put_order(&order(
        "ord_A0001",
        "SX-1",
        "validated",
        "Acme",
        "a@acme.example",
        None,
        lines,
    ))
    .await;
    w.start_services();
    let store = w.ns.store.clone();
    let flagged = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        let status = store.status(Some("salon-sante-2026")).await.unwrap();
        partner_by_order(&s, "ord_A0001").is_some_and(|p| p["products"][IW_BANNER] == 3)
            && !status[0].broken_mappings.is_empty()
    })
    .await;
    assert!(flagged, "{}", w.logs());
    let status = store.status(Some("salon-sante-2026")).await.unwrap();
    assert_eq!(status[0].broken_mappings.len(), 1);
    assert!(
        status[0].broken_mappings[0]
            .reason
            .contains("fix mask row 3"),
        "{:?}",
        status[0].broken_mappings
    );
    assert!(
        status[0].parked.is_empty(),
        "the order is not parked: {:?}",
        status[0].parked
    );
    assert!(
        status[0].heals.is_empty(),
        "a vanished product is never a reason to recreate a partner"
    );
    assert!(
        w.cli(&["status", "--event", "salon-sante-2026"])
            .contains("mapping broken: inwink product")
    );
    assert_eq!(
        w.inwink_state().await["partners"].as_array().unwrap().len(),
        1
    );
    // The organiser fixes the mask (the Wi-Fi row removed): the record is cleared.
    let fixed = w.dir.join("fixed.csv");
    std::fs::write(&fixed, format!("planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\nBannière 2x1 m,prd_banner_2x1,Bannière 2x1 m,{IW_BANNER}\n")).unwrap();
    w.cli(&[
        "mask",
        "import",
        "--event",
        "salon-sante-2026",
        fixed.to_str().unwrap(),
    ]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        store.status(Some("salon-sante-2026")).await.unwrap()[0]
            .broken_mappings
            .is_empty()
    );
    w.finish().await;
}

/// The most API calls (token requests excluded) the simulator logged in any one second.
fn busiest_second(calls: &Value) -> (usize, usize) {
    use time::format_description::well_known::Rfc3339;
    let mut times: Vec<time::OffsetDateTime> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["path"] != "/oauth/token")
        .map(|c| time::OffsetDateTime::parse(c["time"].as_str().unwrap(), &Rfc3339).unwrap())
        .collect();
    times.sort();
    // The busiest window of one second starts at some call: count from each (the simulator
    // stamps calls to the millisecond).
    let mut busiest = 0;
    let mut end = 0;
    for (start, t) in times.iter().enumerate() {
        while end < times.len() && times[end] - *t < time::Duration::seconds(1) {
            end += 1;
        }
        busiest = busiest.max(end - start);
    }
    (busiest, times.len())
}

/// `PXSYNC_INWINK_RATE_LIMIT` is one budget for the inwink event, shared by every emitter: two
/// processes with a cap of 10 calls per second together never send more than that in any
/// second, and the salon still reaches the exact expected state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_cap_holds_across_two_emitter_processes() {
    const CAP: usize = 10;
    let mut w = World::new("ratecap").await;
    let (mask_path, mapped) = demo_mask();
    w.generated_salon(&mask_path, 30, 11).await;
    // The preflight of `enable` read inwink before the emitters started: only theirs count.
    w.http
        .delete(&format!("{}/_sim/calls", w.inwink.base_url()))
        .await;
    w.start_with_two_emitters(&[("PXSYNC_INWINK_RATE_LIMIT", &CAP.to_string())]);
    let px = w
        .http
        .get(&format!("{}/_sim/state", w.planexpo.base_url()))
        .await;
    let exp = expected(&px, &mapped);
    assert!(exp.partners.len() >= 15, "enough orders to be held back");
    let state = w.converged(&exp).await;
    let calls = w
        .http
        .get(&format!("{}/_sim/calls", w.inwink.base_url()))
        .await;
    let (busiest, total) = busiest_second(&calls);
    println!("{total} calls, at most {busiest} in one second (cap {CAP})");
    assert!(total > 3 * CAP, "enough calls to be capped: {total}");
    // The calls' slots are exactly 1/CAP apart on the shared timeline, so a second holds at most
    // CAP slots. A call reaches the simulator a little after its slot (timer, scheduling, the
    // HTTP request), by a delay D that varies from call to call: a window of one second can thus
    // see the calls of 1 + D seconds of slots, CAP × (1 + D) + 1. Up to D = 200 ms on this
    // shared machine that is CAP + 3. Two uncoordinated emitters, each at the cap, would reach
    // twice the cap.
    assert!(
        busiest <= CAP + 3,
        "{busiest} calls in one second, over the cap of {CAP}"
    );
    for name in ["emitter-1", "emitter-2"] {
        let log = w.services.iter().find(|s| s.name == name).unwrap().output();
        assert!(
            log.contains("inwink calls capped"),
            "{name} did not take the cap:\n{log}"
        );
    }
    assert_eq!(state["quantity_decrease_attempts"], 0);
    w.finish().await;
}

/// The prerequisites sheet is checked against the deployment's configuration, at `mask import`
/// and in the preflight: a different id or a reference that points elsewhere is an error naming
/// the sheet, row and column and the configuration it differs from; a secret is never shown;
/// `mask draft` fills the ids from the configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prerequisites_sheet_is_checked_against_the_deployment() {
    use pxsync_mask::PrerequisiteKey as K;
    let w = World::new("prereq").await;
    w.cli(&["migrate"]);
    let import = |path: &std::path::Path, extra: &[(String, String)]| {
        let mut env = w.env();
        env.extend(extra.iter().cloned());
        run_command(
            CLI,
            &[
                "mask",
                "import",
                "--event",
                "salon-sante-2026",
                path.to_str().unwrap(),
            ],
            &env,
        )
    };
    let products = [("prd_banner_2x1".to_owned(), "Bannière 2x1 m".to_owned())];
    let inwink = [(IW_BANNER.to_owned(), "Bannière 2x1 m".to_owned())];
    // An .xlsx mask naming another inwink event than the one configured.
    let other_event = w.dir.join("other-event.xlsx");
    pxsync_mask::write_draft(
        &other_event,
        &products,
        &inwink,
        &std::collections::BTreeMap::from([
            (K::PlanexpoEventSlug, "salon-sante-2026".to_owned()),
            (
                K::InwinkEventId,
                "99999999-0000-4000-8000-000000000000".to_owned(),
            ),
        ]),
    )
    .unwrap();
    let (ok, out, err) = import(&other_event, &[]);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("sheet Prérequis techniques, row 5, column B: the inwink event id is \"99999999-0000-4000-8000-000000000000\" in the mask but")
            && err.contains("in the environment (PXSYNC_INWINK_EVENT_ID)")
            && err.contains("nothing was imported"),
        "{err}"
    );
    assert_eq!(w.mask_version().await, None, "nothing imported");
    // A value that looks like a secret is an error naming its cell, and is never shown.
    let leaked = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    let secret = w.dir.join("secret.xlsx");
    pxsync_mask::write_draft(
        &secret,
        &products,
        &inwink,
        &std::collections::BTreeMap::from([(K::InwinkClientSecretRef, leaked.to_owned())]),
    )
    .unwrap();
    let (ok, out, err) = import(&secret, &[]);
    assert!(!ok && err.contains("row 7, column B"), "{out}{err}");
    assert!(!out.contains(leaked) && !err.contains(leaked));
    // The draft fills the ids from the configuration: it imports as it is.
    let draft = w.dir.join("draft.xlsx");
    w.cli(&[
        "mask",
        "draft",
        "--event",
        "salon-sante-2026",
        draft.to_str().unwrap(),
    ]);
    let drafted = pxsync_mask::read_mask(&draft).unwrap();
    assert_eq!(
        drafted.prerequisite(K::InwinkEventId),
        Some(pxsync_sim::inwink::Options::default().event_id.as_str())
    );
    assert_eq!(
        drafted.prerequisite(K::PlanexpoEventSlug),
        Some("salon-sante-2026")
    );
    let (ok, out, err) = import(&draft, &[]);
    assert!(ok, "{out}{err}");
    let out = w.cli(&["preflight", "--event", "salon-sante-2026"]);
    assert!(
        out.contains("[ok  ] prerequisites: the mask's sheet matches the environment"),
        "{out}"
    );
    // A salons file that reads the inwink secret from another variable than the sheet says.
    let config = w.dir.join("salons.json");
    let planexpo_options = pxsync_sim::planexpo::Options::default();
    let inwink_options = pxsync_sim::inwink::Options::default();
    std::fs::write(
        &config,
        serde_json::to_string_pretty(&json!({"salons": [{
            "planexpo_event": "salon-sante-2026",
            "planexpo_base_url": w.planexpo.base_url(),
            "planexpo_api_key": {"env": "PXSYNC_PLANEXPO_API_KEY"},
            "inwink_event_id": inwink_options.event_id,
            "inwink_base_url": w.inwink.base_url(),
            "inwink_token_url": format!("{}/oauth/token", w.inwink.base_url()),
            "inwink_client_id": inwink_options.client_id,
            "inwink_client_secret": {"env": "INWINK_SECRET_SANTE"},
        }]}))
        .unwrap(),
    )
    .unwrap();
    let _ = planexpo_options;
    let with_config = [(
        "PXSYNC_CONFIG".to_owned(),
        config.to_str().unwrap().to_owned(),
    )];
    let mut env = w.env();
    env.extend(with_config.iter().cloned());
    let (ok, out, _) = run_command(CLI, &["preflight", "--event", "salon-sante-2026"], &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("[FAIL] prerequisites: error: sheet Prérequis techniques, row 7, column B: the inwink client secret reference is in environment variable PXSYNC_INWINK_CLIENT_SECRET according to the mask, but the deployment (PXSYNC_CONFIG")
            && out.contains("reads it from INWINK_SECRET_SANTE"),
        "{out}"
    );
    let (ok, out, err) = import(&draft, &with_config);
    assert!(!ok, "{out}{err}");
    assert!(
        err.contains("row 7, column B") && err.contains("(salon salon-sante-2026)"),
        "{err}"
    );
    assert_eq!(
        w.mask_version().await,
        Some(1),
        "the refused import left the mask in force"
    );
    // Drafted under that salons file, the sheet says what the file says, and imports.
    let drafted_with_config = w.dir.join("draft-config.xlsx");
    let (ok, out, err) = run_command(
        CLI,
        &[
            "mask",
            "draft",
            "--event",
            "salon-sante-2026",
            drafted_with_config.to_str().unwrap(),
        ],
        &env,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        pxsync_mask::read_mask(&drafted_with_config)
            .unwrap()
            .prerequisite(K::InwinkClientSecretRef),
        Some("env:INWINK_SECRET_SANTE")
    );
    let (ok, out, err) = import(&drafted_with_config, &with_config);
    assert!(ok, "{out}{err}");
    assert_eq!(w.mask_version().await, Some(2));
    w.finish().await;
}

const IW_BADGES: &str = "2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182";
const IW_VIP: &str = "3c4d5e6f-7081-4b92-8c3d-4e5f60718293";
const IW_LOGO: &str = "4d5e6f70-8192-4ca3-9d4e-5f6071829304";

async fn put_catalogues(w: &World, planexpo: &[(&str, &str)], inwink: &[(&str, &str)]) {
    let products: Vec<Value> = planexpo
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "kind": "product", "paid": true}))
        .collect();
    w.http
        .put(
            &format!("{}/_sim/catalog", w.planexpo.base_url()),
            &json!({ "products": products }),
        )
        .await;
    let data: Vec<Value> = inwink
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    w.http
        .put(
            &format!("{}/_sim/products", w.inwink.base_url()),
            &json!({ "data": data }),
        )
        .await;
}

fn line(product: &str, name: &str, quantity: u32) -> Value {
    json!({"product_id": product, "product_name": name, "quantity": quantity})
}

/// After go-live, mapped products renamed, removed or re-identified on Planexpo (and renamed on
/// inwink) each become one broken mapping naming the mask row and what to do; their lines wait
/// (no write, no refused decrease, nothing parked) while the other product keeps syncing; the
/// fixed mask lets them flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_change_after_go_live_breaks_its_mappings_only() {
    let mut w = World::new("catalogue").await;
    let planexpo_before = [
        ("prd_banner_2x1", "Bannière 2x1 m"),
        ("opt_wifi", "Wi-Fi stand"),
        ("prd_badge_pack10", "Pack 10 badges exposant"),
        ("prd_pass_vip", "Pass VIP"),
        ("prd_logo_catalog", "Logo au catalogue"),
    ];
    let inwink_before = [
        (IW_BANNER, "Bannière 2x1 m"),
        (IW_WIFI, "Wi-Fi stand"),
        (IW_BADGES, "Pack 10 badges exposant"),
        (IW_VIP, "Pass VIP"),
        (IW_LOGO, "Logo au catalogue"),
    ];
    put_catalogues(&w, &planexpo_before, &inwink_before).await;
    w.cli(&["migrate"]);
    let mask = |rows: &[(&str, &str, &str, &str)]| {
        let mut text = String::from(
            "planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\n",
        );
        for (a, b, c, d) in rows {
            text.push_str(&format!("{a},{b},{c},{d}\n"));
        }
        text
    };
    let path = w.dir.join("mask.csv");
    std::fs::write(
        &path,
        mask(&[
            (
                "Bannière 2x1 m",
                "prd_banner_2x1",
                "Bannière 2x1 m",
                IW_BANNER,
            ),
            ("Wi-Fi stand", "opt_wifi", "Wi-Fi stand", IW_WIFI),
            (
                "Pack 10 badges exposant",
                "prd_badge_pack10",
                "Pack 10 badges exposant",
                IW_BADGES,
            ),
            ("Pass VIP", "prd_pass_vip", "Pass VIP", IW_VIP),
            (
                "Logo au catalogue",
                "prd_logo_catalog",
                "Logo au catalogue",
                IW_LOGO,
            ),
        ]),
    )
    .unwrap();
    let ev = "salon-sante-2026";
    w.cli(&["mask", "import", "--event", ev, path.to_str().unwrap()]);
    w.cli(&["enable", "--event", ev]);
    let lines = |banner, wifi, badges: (&str, u32), vip, logo| {
        json!([
            line("prd_banner_2x1", "Bannière 2x1 m", banner),
            line("opt_wifi", "Wi-Fi stand", wifi),
            line(badges.0, "Pack 10 badges exposant", badges.1),
            line("prd_pass_vip", "Pass VIP", vip),
            line("prd_logo_catalog", "Logo au catalogue", logo),
        ])
    };
    let acme = |l| {
        order(
            "ord_A0001",
            "SX-1",
            "validated",
            "Acme",
            "a@acme.example",
            None,
            l,
        )
    };
    w.put_order(&acme(lines(3, 1, ("prd_badge_pack10", 2), 1, 1)))
        .await;
    let mut env_fast_inspector = w.env();
    env_fast_inspector.push(("PXSYNC_EXISTENCE_CHECK_INTERVAL".into(), "1s".into()));
    let env = env_fast_inspector;
    for (name, exe) in [
        ("ingestor", INGESTOR),
        ("projector", PROJECTOR),
        ("emitter", EMITTER),
    ] {
        w.services
            .push(Service::spawn(name, exe, &[], &env, &w.dir));
    }
    let holds = |s: &Value, product: &str| {
        partner_by_order(s, "ord_A0001").map(|p| p["products"][product].as_u64().unwrap_or(0))
    };
    let synced = wait_for(Duration::from_secs(30), || async {
        holds(&w.inwink_state().await, IW_LOGO) == Some(1)
            && holds(&w.inwink_state().await, IW_BANNER) == Some(3)
    })
    .await;
    assert!(synced, "{}", w.logs());
    // After go-live: on Planexpo the Wi-Fi is renamed, the badge pack is recreated under a new
    // id, the VIP pass is removed; on inwink the logo product is renamed.
    put_catalogues(
        &w,
        &[
            ("prd_banner_2x1", "Bannière 2x1 m"),
            ("opt_wifi", "Wi-Fi stand premium"),
            ("prd_badge_pack10_v2", "Pack 10 badges exposant"),
            ("prd_logo_catalog", "Logo au catalogue"),
        ],
        &[
            (IW_BANNER, "Bannière 2x1 m"),
            (IW_WIFI, "Wi-Fi stand"),
            (IW_BADGES, "Pack 10 badges exposant"),
            (IW_VIP, "Pass VIP"),
            (IW_LOGO, "Logo en page d'accueil"),
        ],
    )
    .await;
    let store = w.ns.store.clone();
    let found = wait_for(Duration::from_secs(30), || async {
        store.broken_mappings(ev).await.unwrap().len() == 4
    })
    .await;
    assert!(found, "{:?}\n{}", store.broken_mappings(ev).await, w.logs());
    let broken = store.broken_mappings(ev).await.unwrap();
    let by_row: Vec<(Option<i32>, &str, &str)> = broken
        .iter()
        .map(|b| (b.mask_row, b.side.as_str(), b.reason.as_str()))
        .collect();
    assert_eq!(by_row[0].0, Some(3));
    assert_eq!(by_row[0].1, "planexpo");
    assert!(
        by_row[0].2.starts_with("mapping broken: Planexpo product opt_wifi was renamed on Planexpo (\"Wi-Fi stand\" is now \"Wi-Fi stand premium\"): fix mask row 3 (column A"),
        "{by_row:?}"
    );
    assert_eq!((by_row[1].0, by_row[1].1), (Some(4), "planexpo"));
    assert!(
        by_row[1].2.contains("has a new id on Planexpo (prd_badge_pack10 is now prd_badge_pack10_v2): fix mask row 4 (column B: prd_badge_pack10_v2)"),
        "{by_row:?}"
    );
    assert_eq!((by_row[2].0, by_row[2].1), (Some(5), "planexpo"));
    assert!(
        by_row[2].2.contains(
            "prd_pass_vip (for \"Pass VIP\") no longer exists on Planexpo: fix mask row 5"
        ),
        "{by_row:?}"
    );
    assert_eq!((by_row[3].0, by_row[3].1), (Some(6), "inwink"));
    assert!(
        by_row[3].2.contains("renamed on inwink (\"Logo au catalogue\" is now \"Logo en page d'accueil\"): fix mask row 6 (column C"),
        "{by_row:?}"
    );
    // The order changes: the banner syncs; the broken rows' lines wait (the badge line now
    // carries the new id, so the old product would be a desired 0: it is held, not refused).
    w.put_order(&acme(lines(5, 2, ("prd_badge_pack10_v2", 3), 2, 2)))
        .await;
    let banner = wait_for(Duration::from_secs(30), || async {
        holds(&w.inwink_state().await, IW_BANNER) == Some(5)
    })
    .await;
    assert!(banner, "{}", w.logs());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = w.inwink_state().await;
    for (product, q) in [(IW_WIFI, 1), (IW_BADGES, 2), (IW_VIP, 1), (IW_LOGO, 1)] {
        assert_eq!(holds(&s, product), Some(q), "{product} waits");
    }
    let status = &store.status(Some(ev)).await.unwrap()[0];
    assert!(
        status.refused_decreases.is_empty(),
        "{:?}",
        status.refused_decreases
    );
    assert!(status.parked.is_empty(), "{:?}", status.parked);
    assert!(status.heals.is_empty());
    assert_eq!(status.broken_mappings.len(), 4);
    let text = w.cli(&["status", "--event", ev]);
    assert!(
        text.contains("fix mask row 4 (column B: prd_badge_pack10_v2)"),
        "{text}"
    );
    // The organiser fixes the rows (new name, new id, VIP row removed, new inwink name) and
    // imports: the records are cleared and the waiting lines flow.
    std::fs::write(
        &path,
        mask(&[
            (
                "Bannière 2x1 m",
                "prd_banner_2x1",
                "Bannière 2x1 m",
                IW_BANNER,
            ),
            ("Wi-Fi stand premium", "opt_wifi", "Wi-Fi stand", IW_WIFI),
            (
                "Pack 10 badges exposant",
                "prd_badge_pack10_v2",
                "Pack 10 badges exposant",
                IW_BADGES,
            ),
            (
                "Logo au catalogue",
                "prd_logo_catalog",
                "Logo en page d'accueil",
                IW_LOGO,
            ),
        ]),
    )
    .unwrap();
    w.cli(&["mask", "import", "--event", ev, path.to_str().unwrap()]);
    let flowed = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        holds(&s, IW_WIFI) == Some(2)
            && holds(&s, IW_BADGES) == Some(3)
            && holds(&s, IW_LOGO) == Some(2)
    })
    .await;
    assert!(flowed, "{}", w.logs());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        store.broken_mappings(ev).await.unwrap().is_empty(),
        "the fixed mask breaks nothing: {:?}",
        store.broken_mappings(ev).await
    );
    assert_eq!(holds(&w.inwink_state().await, IW_VIP), Some(1));
    assert_eq!(
        w.inwink_state().await["quantity_decrease_attempts"],
        0,
        "no decrease was ever sent"
    );
    w.finish().await;
}

/// A mask re-import that points a product at another inwink product is one remap record
/// (old → new, mask row) in the import's output and the status; the new product gets the
/// quantities, the old one keeps what it holds, and no refused decrease is recorded for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remap_is_reported_as_a_remap_not_as_refused_decreases() {
    const IW_BANNER_XL: &str = "5e6f7081-92a3-4db4-8e5f-607182930415";
    let mut w = World::new("remap").await;
    w.http
        .put(
            &format!("{}/_sim/products", w.inwink.base_url()),
            &json!({"data": [
                {"id": IW_BANNER, "name": "Bannière 2x1 m"}, {"id": IW_WIFI, "name": "Wi-Fi stand"},
                {"id": IW_BANNER_XL, "name": "Bannière 2x1 m (nouvelle)"}
            ]}),
        )
        .await;
    w.cli(&["migrate"]);
    w.import_mask();
    let ev = "salon-sante-2026";
    w.cli(&["enable", "--event", ev]);
    let orders = ["ord_A0001", "ord_B0002", "ord_C0003"];
    for (i, id) in orders.iter().enumerate() {
        w.put_order(&order(
            id,
            id,
            "validated",
            &format!("Société {i}"),
            &format!("{i}@remap.example"),
            None,
            json!([
                line("prd_banner_2x1", "Bannière 2x1 m", 3),
                line("opt_wifi", "Wi-Fi stand", 1)
            ]),
        ))
        .await;
    }
    w.start_services();
    let holds = |s: &Value, order: &str, product: &str| {
        partner_by_order(s, order).map(|p| p["products"][product].as_u64().unwrap_or(0))
    };
    let synced = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        orders.iter().all(|o| holds(&s, o, IW_BANNER) == Some(3))
    })
    .await;
    assert!(synced, "{}", w.logs());
    let path = w.dir.join("remapped.csv");
    std::fs::write(
        &path,
        format!(
            "planexpo_product_name,planexpo_product_id,inwink_product_name,inwink_product_id\n\
             Bannière 2x1 m,prd_banner_2x1,Bannière 2x1 m (nouvelle),{IW_BANNER_XL}\n\
             Wi-Fi stand,opt_wifi,Wi-Fi stand,{IW_WIFI}\n"
        ),
    )
    .unwrap();
    let out = w.cli(&["mask", "import", "--event", ev, path.to_str().unwrap()]);
    assert!(
        out.contains(&format!("remap: Planexpo product prd_banner_2x1 (\"Bannière 2x1 m\", mask row 2) now goes to inwink product {IW_BANNER_XL} instead of {IW_BANNER}")),
        "{out}"
    );
    let moved = wait_for(Duration::from_secs(30), || async {
        let s = w.inwink_state().await;
        orders.iter().all(|o| holds(&s, o, IW_BANNER_XL) == Some(3))
    })
    .await;
    assert!(moved, "{}", w.logs());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let s = w.inwink_state().await;
    for o in orders {
        assert_eq!(
            holds(&s, o, IW_BANNER),
            Some(3),
            "the old product keeps what it holds"
        );
        assert_eq!(holds(&s, o, IW_WIFI), Some(1));
    }
    let status = &w.ns.store.status(Some(ev)).await.unwrap()[0];
    assert!(
        status.refused_decreases.is_empty(),
        "a remap is not a flood of refused decreases: {:?}",
        status.refused_decreases
    );
    assert_eq!(status.remaps.len(), 1, "{:?}", status.remaps);
    let r = &status.remaps[0];
    assert_eq!(
        (
            r.version,
            r.remap.from_inwink_product_id.as_str(),
            r.remap.to_inwink_product_id.as_str(),
            r.remap.row
        ),
        (2, IW_BANNER, IW_BANNER_XL, 2)
    );
    assert!(
        w.cli(&["status", "--event", ev])
            .contains("mask version 2: remap: Planexpo product prd_banner_2x1")
    );
    // The order's story tells the remap once; the audit finds nothing unexplained (the old
    // product is no longer synchronised).
    let story = w.cli(&["audit", "order", "ord_A0001", "--event", ev]);
    assert_eq!(
        story
            .matches("remap: Planexpo product prd_banner_2x1")
            .count(),
        1,
        "{story}"
    );
    assert!(!story.contains("decrease refused"), "{story}");
    w.cli(&["audit", "verify"]);
    w.finish().await;
}

// ---------------------------------------------------------------------------------------------
// The projector as processes: killed at each point of its batch cycle, and three of them on one
// durable consumer.

use pxsync_test_support::projection::{
    self, ProjectedState, expected_orders, projected_state, publish_shuffled_with_duplicates,
};

/// The namespace's durable consumer, created before any projector with the projector's settings
/// but a 2 s acknowledgement wait (the projector uses the existing durable as it is), so that
/// what a killed projector left unacknowledged is redelivered within the test.
async fn projector_consumer_with_short_ack_wait(ns: &TestNamespace) {
    use async_nats::jetstream::consumer;
    let stream = ns.bus.ensure_stream(&Default::default()).await.unwrap();
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("projector".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(2),
            max_ack_pending: 20_000,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
}

/// A namespace with the projection salon, its mask, and `events` published shuffled with
/// duplicates.
async fn projection_namespace(
    tag: &str,
    events: &[pxsync_core::event::EventEnvelope],
    seed: u64,
) -> TestNamespace {
    let ns = TestNamespace::new(tag).await;
    projection::prepare_salon(&ns.store, "test").await.unwrap();
    projector_consumer_with_short_ack_wait(&ns).await;
    publish_shuffled_with_duplicates(&ns.bus, events, 10, seed)
        .await
        .unwrap();
    ns
}

/// Waits until the namespace's log holds `n` events and the consumer has nothing pending.
async fn wait_until_projected(ns: &TestNamespace, n: usize, timeout: Duration) -> bool {
    wait_for(timeout, || async {
        ns.store.event_log_count(None).await.unwrap_or(-1) == n as i64
            && matches!(ns.bus.projector_lag().await, Ok((0, 0)))
    })
    .await
}

/// The whole state is the fold of the events, each logged once, every chain intact.
async fn assert_projected_exactly(
    ns: &TestNamespace,
    events: &[pxsync_core::event::EventEnvelope],
) -> ProjectedState {
    let state = projected_state(&ns.store).await.unwrap();
    let mut ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        state.event_ids.len(),
        ids.len(),
        "each event is in event_log exactly once"
    );
    assert!(
        state.event_ids == ids,
        "event_log holds exactly the published events"
    );
    let expected = expected_orders(events, &projection::mask());
    assert_eq!(state.orders.len(), expected.len(), "one state per order");
    for (got, want) in state.orders.iter().zip(&expected) {
        assert_eq!(
            (&got.order_id, got.revision, &got.state, &got.desired),
            (&want.order_id, want.revision, &want.state, &want.desired),
            "the state of {} is the fold of its events",
            want.order_id
        );
        assert_eq!(
            got.queue.as_deref(),
            Some("pending"),
            "{} is marked for the emitter",
            got.order_id
        );
    }
    assert_eq!(
        ns.store.verify_chains().await.unwrap(),
        None,
        "every hash chain verifies"
    );
    state
}

/// Runs a projector process with a fault hook until it dies; returns its output.
async fn projector_until_its_fault(
    ns: &TestNamespace,
    dir: &std::path::Path,
    fault: &str,
) -> String {
    let mut env = ns.env();
    env.push(("PXSYNC_FAULT".into(), fault.into()));
    env.push(("PXSYNC_PROJECTOR_BATCH".into(), "200".into()));
    let name = format!("projector-{}", fault.replace(':', "-"));
    let mut p = Service::spawn(&name, PROJECTOR, &[], &env, dir);
    let status = p.wait(Duration::from_secs(60));
    let out = p.output();
    let status = status.unwrap_or_else(|| panic!("{name} did not die at its fault:\n{out}"));
    assert_eq!(
        status.code(),
        Some(pxsync::projector::FAULT_EXIT_CODE),
        "{name} died at its fault:\n{out}"
    );
    assert!(out.contains(&format!("fault injected: {fault}")), "{out}");
    out
}

/// The fault hooks kill the projector process between commit and ack, then between fetch and
/// commit; after a restart every event is in the log exactly once and the state is the fold of
/// the events.
#[tokio::test]
async fn a_projector_killed_between_commit_and_ack_or_fetch_and_commit_loses_and_doubles_nothing() {
    let events = projection::history(1_200);
    let ns = projection_namespace("killed", &events, 11).await;
    let dir = scratch_dir("killed");

    projector_until_its_fault(&ns, &dir, "projector:after-commit").await;
    let committed = ns.store.event_log_count(None).await.unwrap();
    assert!(
        committed > 0 && committed < events.len() as i64,
        "killed after its first commit: one batch committed ({committed})"
    );
    let mut consumer = ns
        .bus
        .projector_consumer(&Default::default())
        .await
        .unwrap();
    let info = consumer.info().await.unwrap().clone();
    assert_eq!(
        info.ack_floor.stream_sequence, 0,
        "killed before its acknowledgements: nothing acknowledged"
    );
    assert!(info.delivered.stream_sequence >= committed as u64);

    projector_until_its_fault(&ns, &dir, "projector:after-fetch").await;
    assert_eq!(
        ns.store.event_log_count(None).await.unwrap(),
        committed,
        "killed after its fetch, before its commit: nothing more committed"
    );

    let mut env = ns.env();
    env.push(("PXSYNC_PROJECTOR_BATCH".into(), "200".into()));
    let _projector = Service::spawn("projector", PROJECTOR, &[], &env, &dir);
    assert!(
        wait_until_projected(&ns, events.len(), Duration::from_secs(90)).await,
        "the restarted projector did not project everything: {} of {} events logged, lag {:?}",
        ns.store.event_log_count(None).await.unwrap(),
        events.len(),
        ns.bus.projector_lag().await
    );
    assert_projected_exactly(&ns, &events).await;
    ns.cleanup().await;
}

/// Three projector processes on one durable consumer, over events shuffled and duplicated, give
/// exactly the state one projector gives (over the same events shuffled otherwise), which is
/// the fold of the events. `make bench` runs the same check over 10,000 events.
#[tokio::test]
async fn three_projector_processes_give_exactly_the_state_one_gives() {
    let events = projection::history(2_000);
    let (three, one) = tokio::join!(
        projection_namespace("three", &events, 21),
        projection_namespace("one", &events, 22)
    );
    let dir = scratch_dir("three");
    let env = |ns: &TestNamespace| {
        let mut env = ns.env();
        env.push(("PXSYNC_PROJECTOR_BATCH".into(), "100".into()));
        env.push(("RUST_LOG".into(), "info,pxsync::projector=debug".into()));
        env
    };
    let projectors: Vec<Service> = (1..=3)
        .map(|k| {
            Service::spawn(
                &format!("projector-{k}"),
                PROJECTOR,
                &[],
                &env(&three),
                &dir,
            )
        })
        .chain([Service::spawn(
            "projector-alone",
            PROJECTOR,
            &[],
            &env(&one),
            &dir,
        )])
        .collect();
    let (a, b) = tokio::join!(
        wait_until_projected(&three, events.len(), Duration::from_secs(120)),
        wait_until_projected(&one, events.len(), Duration::from_secs(120))
    );
    assert!(
        a && b,
        "not everything was projected (three: {a}, one: {b})"
    );
    let by_three = assert_projected_exactly(&three, &events).await;
    let by_one = assert_projected_exactly(&one, &events).await;
    assert!(
        by_three == by_one,
        "three projectors give exactly the state one gives"
    );
    for p in &projectors[..3] {
        assert!(
            p.output().contains("batch committed"),
            "{} took part: {}",
            p.name,
            p.output()
        );
    }
    drop(projectors);
    three.cleanup().await;
    one.cleanup().await;
}

/// Writes to inwink, as `inwink_writes` counts them (reads, queries and token calls aside).
async fn write_count(w: &World) -> usize {
    w.inwink_writes().await.len()
}

async fn planexpo_state(w: &World) -> Value {
    w.http
        .get(&format!("{}/_sim/state", w.planexpo.base_url()))
        .await
}

/// Waits until inwink holds exactly what `exp` says.
async fn converge(w: &World, exp: &Expected) {
    let done = wait_for(Duration::from_secs(90), || async {
        differences(&w.inwink_state().await, exp).is_empty()
    })
    .await;
    assert!(
        done,
        "not converged: {:?}\n{}",
        differences(&w.inwink_state().await, exp),
        w.logs()
    );
}

/// `pxsync replay` and `pxsync erase` as real processes against a salon the running services
/// synchronised (with a second revision of some orders): inwink receives no write from either;
/// the replay equals the live state, before and after the erasure; the erasure, given the
/// address on standard input, leaves it nowhere in the event log, the ingestor's memory or the
/// audit, and the other contacts are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_erase_processes_write_nothing_to_inwink() {
    let mut w = World::new("replaysys").await;
    let (mask_path, mapped) = demo_mask();
    w.generated_salon(&mask_path, 30, 3).await;
    w.start_services();
    converge(&w, &expected(&planexpo_state(&w).await, &mapped)).await;
    // A second revision of five validated orders.
    let px = planexpo_state(&w).await;
    let validated: Vec<Value> = px["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "validated")
        .cloned()
        .collect();
    assert!(validated.len() >= 10, "a salon of some size");
    for o in validated.iter().take(5) {
        let mut o = o.clone();
        o["company"]["name"] = json!(format!(
            "{} (rev 2)",
            o["company"]["name"].as_str().unwrap()
        ));
        w.put_order(&o).await;
    }
    let px = planexpo_state(&w).await;
    converge(&w, &expected(&px, &mapped)).await;

    // Stop the emitter (SIGTERM: it finishes what it has in flight), so that whatever inwink
    // receives from now on comes from the commands under test.
    let emitter = w.services.iter_mut().find(|s| s.name == "emitter").unwrap();
    assert!(
        emitter.terminate(Duration::from_secs(15)).is_some(),
        "the emitter stopped"
    );
    let writes_before = write_count(&w).await;
    assert!(writes_before > 0, "the services wrote the salon");

    let into = format!("{}_shadow", w.ns.ns.schema());
    let live_orders: i64 =
        w.ns.store
            .client()
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM order_state", &[])
            .await
            .unwrap()
            .get(0);
    let out = w.cli(&["replay", "--event", "salon-sante-2026", "--into", &into]);
    assert!(
        out.contains(&format!(" events of {live_orders} orders into {into}"))
            && out.contains("the replayed state equals the live state"),
        "{out}"
    );
    let shadow_rows: i64 =
        w.ns.store
            .client()
            .await
            .unwrap()
            .query_one(&format!("SELECT count(*) FROM {into}.order_state"), &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(
        shadow_rows, live_orders,
        "the shadow schema holds every order"
    );
    assert_eq!(
        write_count(&w).await,
        writes_before,
        "the replay wrote to inwink"
    );

    // Erase the booking contact of a validated order, typed in another case, from stdin.
    let person = validated[7]["booking_contact"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = person.trim().to_lowercase();
    let orders_of_person: Vec<String> = px["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["booking_contact"]["email"]
                .as_str()
                .is_some_and(|e| e.trim().to_lowercase() == key)
        })
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    let (ok, out, err) = pxsync_test_support::run_command_with_input(
        CLI,
        &["erase", "--email-stdin"],
        &w.env(),
        &format!("{}\n", person.to_uppercase()),
    );
    assert!(ok, "erase failed:\n{out}\n{err}");
    assert!(!out.to_lowercase().contains(&key) && !err.to_lowercase().contains(&key));
    assert!(out.contains("erased: 1 person key"), "{out}");
    assert!(
        out.contains(&format!(
            "removed the booking contact from the ingestor's memory of {} orders",
            orders_of_person.len()
        )),
        "{out}"
    );
    for order in &orders_of_person {
        assert!(
            out.contains(&format!("booking contact of order {order} ")),
            "{out}"
        );
    }
    assert!(
        out.contains("inwink is not changed by this command"),
        "{out}"
    );

    let client = w.ns.store.client().await.unwrap();
    let holding = |table: &str, column: &str| {
        format!(
            "SELECT count(*) FROM {table} WHERE position($1 in lower(convert_from({column}, 'UTF8'))) > 0"
        )
    };
    let in_memory: i64 = client
        .query_one(&holding("ingest_orders", "previous"), &[&key])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        in_memory, 0,
        "the ingestor's memory no longer holds the person"
    );
    let in_log: i64 = client
        .query_one(
            "SELECT count(*) FROM event_log WHERE position($1 in lower(convert_from(payload, 'UTF8'))) > 0",
            &[&key],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_log, 0, "the event log never held the address in clear");
    let contacts_kept: i64 = client
        .query_one(
            "SELECT count(*) FROM ingest_orders WHERE position('\"email\"' in convert_from(previous, 'UTF8')) > 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let orders_seen: i64 = client
        .query_one("SELECT count(*) FROM ingest_orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        contacts_kept,
        orders_seen - orders_of_person.len() as i64,
        "the other contacts stay in the ingestor's memory"
    );

    // Replays and audits still run, and read the person as erased.
    let out = w.cli(&["replay", "--event", "salon-sante-2026", "--into", &into]);
    assert!(
        out.contains(&format!(
            "{} orders' booking contacts read as erased",
            orders_of_person.len()
        )) && out.contains("the replayed state equals the live state"),
        "{out}"
    );
    let story = w.cli(&[
        "audit",
        "order",
        &orders_of_person[0],
        "--event",
        "salon-sante-2026",
    ]);
    assert!(
        story.contains("booking contact erased") && !story.to_lowercase().contains(&key),
        "{story}"
    );
    assert_eq!(
        write_count(&w).await,
        writes_before,
        "the erasure or the second replay wrote to inwink"
    );
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {into} CASCADE"))
        .await
        .unwrap();
    drop(client);
    w.finish().await;
}
