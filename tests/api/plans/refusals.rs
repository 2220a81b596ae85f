//! What a plan request is refused, one row each: the request, its status, and where the
//! guides word it the first issue's Spine code, issue code and element. After every row the
//! database is as it was.

use super::*;

/// What a row sends.
enum Sent {
    Json(Value),
    Text(&'static str),
    Nothing,
}

struct Refused {
    name: &'static str,
    method: Method,
    path: String,
    token: String,
    sent: Sent,
    status: u16,
    /// The first issue's (Spine code, issue code, expression), each where checked.
    spine: Option<&'static str>,
    code: Option<&'static str>,
    expression: Option<&'static str>,
}

fn refused(name: &'static str, method: Method, path: String, token: String, sent: Sent) -> Refused {
    Refused {
        name,
        method,
        path,
        token,
        sent,
        status: 0,
        spine: None,
        code: None,
        expression: None,
    }
}

impl Refused {
    fn is(mut self, status: u16) -> Refused {
        self.status = status;
        self
    }
    fn spine(mut self, spine: &'static str) -> Refused {
        self.spine = Some(spine);
        self
    }
    fn code(mut self, code: &'static str) -> Refused {
        self.code = Some(code);
        self
    }
    fn at(mut self, expression: &'static str) -> Refused {
        self.expression = Some(expression);
        self
    }
}

/// What differs from the row in the answer to it, if anything.
async fn failure_of(app: &TestApp, row: &Refused) -> Option<String> {
    let res = match &row.sent {
        Sent::Json(body) => {
            app.request(row.method.clone(), &row.path, Some(&row.token), Some(body))
                .await
        }
        Sent::Nothing => {
            app.request(row.method.clone(), &row.path, Some(&row.token), None)
                .await
        }
        Sent::Text(text) => app
            .client
            .request(row.method.clone(), app.url(&row.path))
            .bearer_auth(&row.token)
            .header("Content-Type", "application/fhir+json")
            .body(*text)
            .send()
            .await
            .unwrap(),
    };
    let status = res.status().as_u16();
    let outcome: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap_or_default();
    let issue = &outcome["issue"][0];
    let wrong = status != row.status
        || row.spine.is_some_and(|spine| {
            outcome["resourceType"] != "OperationOutcome" || spine_code(&outcome) != spine
        })
        || row.code.is_some_and(|code| issue["code"] != code)
        || row
            .expression
            .is_some_and(|expression| issue["expression"][0] != expression);
    wrong.then(|| {
        format!(
            "{} ({} {}): expected {} {:?} {:?} {:?}\n    got {status} {outcome}",
            row.name, row.method, row.path, row.status, row.spine, row.code, row.expression
        )
    })
}

#[tokio::test]
async fn every_refused_plan_request_answers_its_status_and_writes_nothing() {
    let app = app_with_las().await;
    let plan = app.create_plan(&plan_json("9449306753", LA_A, "P-1")).await;
    let id = plan["id"].as_str().unwrap();
    let flag = body(app.get(&format!("/Flag/{id}"), &app.social(LA_A)).await).await;
    let (social, health) = (app.social(LA_A), app.health());
    let unknown_la = "E06000001";
    let mut unknown_id = plan_json("9449306753", LA_A, "P-1");
    unknown_id["id"] = json!("does-not-exist");
    let mut other_id = plan.clone();
    other_id["id"] = json!("another-id");
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
    #[rustfmt::skip]
    let rows = [
        refused("a read of an unknown plan", get.clone(), "/EpisodeOfCare/does-not-exist".into(), social.clone(), Sent::Nothing)
            .is(404).spine("RESOURCE_NOT_FOUND"),
        refused("a read of an unknown Flag", get, "/Flag/does-not-exist".into(), health, Sent::Nothing)
            .is(404),
        refused("an update of an unknown id", put.clone(), "/EpisodeOfCare/does-not-exist".into(), social.clone(), Sent::Json(unknown_id))
            .is(404),
        refused("a plan whose identifier is taken", post.clone(), "/EpisodeOfCare".into(), social.clone(), Sent::Json(plan_json("9000000009", LA_A, "P-1")))
            .is(409).spine("INVALID_VALUE").code("duplicate").at("EpisodeOfCare.identifier"),
        refused("a plan of an unknown LA", post.clone(), "/EpisodeOfCare".into(), app.social(unknown_la), Sent::Json(plan_json("9449306753", unknown_la, "P-1")))
            .is(422).spine("INVALID_VALUE").at("EpisodeOfCare.managingOrganization.identifier.value"),
        refused("a JSON array", post.clone(), "/EpisodeOfCare".into(), social.clone(), Sent::Json(json!([1, 2])))
            .is(400),
        refused("a Patient", post.clone(), "/EpisodeOfCare".into(), social.clone(), Sent::Json(json!({"resourceType": "Patient"})))
            .is(400),
        refused("no resourceType", post.clone(), "/EpisodeOfCare".into(), social.clone(), Sent::Json(json!({"status": "active"})))
            .is(400),
        refused("a body that is not JSON", post.clone(), "/EpisodeOfCare".into(), social.clone(), Sent::Text("{not json"))
            .is(400),
        refused("a body whose id is not the URL's", put.clone(), "/EpisodeOfCare/does-not-match".into(), social.clone(), Sent::Json(other_id))
            .is(400),
        refused("a Flag created", post, "/Flag".into(), social.clone(), Sent::Json(flag.clone()))
            .is(405).spine("UNSUPPORTED_SERVICE"),
        refused("a Flag updated", put, format!("/Flag/{id}"), social.clone(), Sent::Json(flag.clone()))
            .is(405).spine("UNSUPPORTED_SERVICE"),
        refused("a Flag deleted", delete, format!("/Flag/{id}"), social, Sent::Json(flag))
            .is(405).spine("UNSUPPORTED_SERVICE"),
    ];
    let (snapshot, versions) = (app.snapshot(), app.versions());
    let mut failures = Vec::new();
    for row in &rows {
        failures.extend(failure_of(&app, row).await);
        if app.snapshot() != snapshot || app.versions() != versions {
            failures.push(format!("{}: the database changed", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn an_invalid_plan_is_422_naming_every_element_and_writes_nothing() {
    let app = app_with_las().await;
    let mut plan = plan_json("9449306754", LA_A, "P-1");
    plan["reason"] = json!([{"text": "neglect"}]);
    plan["period"] = json!({"end": "2026-01-01"});
    let before = app.snapshot();
    let res = app.post("/EpisodeOfCare", &app.social(LA_A), &plan).await;
    assert_eq!(res.status(), 422);
    let outcome: Value = res.fhir().await;
    let found: Vec<(String, String)> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["details"]["coding"][0]["code"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                i["expression"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        found.contains(&(
            "ADDITIONAL_PROPERTIES".into(),
            "EpisodeOfCare.reason".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&("MISSING_VALUE".into(), "EpisodeOfCare.period.start".into())),
        "{found:?}"
    );
    assert_eq!(app.snapshot(), before);
    // A bad check digit alone is INVALID_VALUE at the NHS number.
    let res = app
        .post(
            "/EpisodeOfCare",
            &app.social(LA_A),
            &plan_json("9449306754", LA_A, "P-1"),
        )
        .await;
    let outcome: Value = res.fhir().await;
    assert_eq!(spine_code(&outcome), "INVALID_VALUE");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "EpisodeOfCare.patient.identifier.value"
    );
}
