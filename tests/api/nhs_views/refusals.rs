//! What the views refuse, in the guides' shape, and what their statements promise.

use super::*;

/// A request the views refuse, and the answer the guides give it.
struct Refused {
    name: &'static str,
    method: Method,
    path: String,
    token: Option<String>,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    spine: &'static str,
    /// The diagnostics, where the guides word them.
    diagnostics: Option<&'static str>,
}

fn refused(name: &'static str, method: Method, path: String, token: Option<String>) -> Refused {
    Refused {
        name,
        method,
        path,
        token,
        headers: &[],
        status: 0,
        spine: "",
        diagnostics: None,
    }
}

impl Refused {
    fn with(mut self, headers: &'static [(&'static str, &'static str)]) -> Refused {
        self.headers = headers;
        self
    }
    fn is(
        mut self,
        status: u16,
        spine: &'static str,
        diagnostics: Option<&'static str>,
    ) -> Refused {
        self.status = status;
        self.spine = spine;
        self.diagnostics = diagnostics;
        self
    }
}

const UK_CORE_OUTCOME: &str = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-OperationOutcome";

#[tokio::test]
async fn only_health_care_reads_the_views_and_errors_take_the_guides_shape() {
    let (app, _clock) = sandbox().await;
    let amina = Some(amina(&app));
    let denied = Some("Access has been denied to process this request");
    let bad_nhs = Some("Invalid NHS number");
    let bad_header = Some("Missing or invalid header parameter");
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
    #[rustfmt::skip]
    let cases = [
        refused("social care reads view B", get.clone(), format!("{B}/CareTeam?patient={CHILD}"), Some(app.social(LA_A)))
            .is(403, "ACCESS_DENIED", denied),
        refused("operations reads view C", get.clone(), format!("{C}/Flag?patient={CHILD}"), Some(app.ops()))
            .is(403, "ACCESS_DENIED", denied),
        refused("no token", get.clone(), format!("{B}/CareTeam?patient={CHILD}"), None)
            .is(401, "ACCESS_DENIED", None),
        refused("a bad check digit", get.clone(), format!("{B}/CareTeam?patient=9449306754"), amina.clone())
            .is(400, "INVALID_SEARCH_DATA", bad_nhs),
        refused("no patient", get.clone(), format!("{B}/AuditEvent"), amina.clone())
            .is(400, "INVALID_SEARCH_DATA", bad_nhs),
        refused("the NHS number in another system", get.clone(), format!("{C}/Flag?patient=http://fhir.nhs.uk/id/nhs-number%7C{CHILD}"), amina.clone())
            .is(400, "INVALID_SEARCH_DATA", bad_nhs),
        refused("a parameter view B does not take", get.clone(), format!("{B}/CareTeam?patient={CHILD}&status=active"), amina.clone())
            .is(400, "INVALID_SEARCH_DATA", None),
        refused("an include view B does not take", get.clone(), format!("{B}/AuditEvent?patient={CHILD}&_include=AuditEvent:patient"), amina.clone())
            .is(400, "INVALID_SEARCH_DATA", None),
        refused("an unscheduled header that is not a boolean", get.clone(), format!("{C}/Flag?patient={CHILD}"), amina.clone())
            .with(&[("IsUnscheduledAccessEvent", "maybe")])
            .is(400, "PRECONDITION_FAILED", bad_header),
        refused("a create in view B", post, format!("{B}/CareTeam"), amina.clone())
            .is(405, "UNSUPPORTED_SERVICE", None),
        refused("an update in view C", put, format!("{C}/Flag/x"), amina.clone())
            .is(405, "UNSUPPORTED_SERVICE", None),
        refused("a delete in view C", delete, format!("{C}/CarePlan/x"), amina.clone())
            .is(405, "UNSUPPORTED_SERVICE", None),
        refused("a type view B does not have", get, format!("{B}/Flag?patient={CHILD}"), amina.clone())
            .is(404, "RESOURCE_NOT_FOUND", None),
    ];
    let before = audit_rows(&app);
    let mut failures = Vec::new();
    for case in &cases {
        let res = view(
            &app,
            case.method.clone(),
            &case.path,
            case.token.as_deref(),
            case.headers,
        )
        .await;
        let status = res.status().as_u16();
        let outcome: Value = res.json().await.unwrap();
        let diagnostics_ok = case
            .diagnostics
            .is_none_or(|text| outcome["issue"][0]["diagnostics"] == text);
        if status != case.status
            || outcome["meta"]["profile"][0] != UK_CORE_OUTCOME
            || spine_code(&outcome) != case.spine
            || !diagnostics_ok
        {
            failures.push(format!(
                "{} ({} {}): expected {} {} {:?}\n    got {status} {outcome}",
                case.name, case.method, case.path, case.status, case.spine, case.diagnostics
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(audit_rows(&app), before, "no rejected request is recorded");
    let traced = view(
        &app,
        Method::GET,
        &format!("{B}/CareTeam?patient={CHILD}"),
        amina.as_deref(),
        &[("TraceID", "7d3a1c5e-0000-4000-8000-000000000001")],
    )
    .await;
    assert_eq!(
        traced.headers()["traceid"],
        "7d3a1c5e-0000-4000-8000-000000000001"
    );
}

/// The types a CapabilityStatement says may be read.
fn readable_types(cs: &Value) -> Vec<String> {
    cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["interaction"]
                .as_array()
                .is_some_and(|i| i.iter().any(|i| i["code"] == "read"))
        })
        .map(|r| r["type"].as_str().unwrap().to_string())
        .collect()
}

/// Each view's statement lists exactly what works: every interaction, parameter and include
/// it names is exercised, and the native statement names none of the views' types.
#[tokio::test]
async fn each_view_s_metadata_lists_exactly_what_works() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    for (base, sample_value) in [(B, CHILD), (C, CHILD)] {
        let cs = get_ok(&app, &format!("{base}/metadata"), "").await;
        assert_eq!(
            cs["implementation"]["url"],
            format!("{}{base}", app.address)
        );
        for resource in cs["rest"][0]["resource"].as_array().unwrap() {
            let ty = resource["type"].as_str().unwrap();
            let interactions: Vec<&str> = resource["interaction"]
                .as_array()
                .map(|i| i.iter().map(|i| i["code"].as_str().unwrap()).collect())
                .unwrap_or_default();
            let search = format!("{base}/{ty}?patient={sample_value}");
            let res = view(&app, Method::GET, &search, Some(&amina), &[]).await;
            assert_eq!(
                res.status() == 200,
                interactions.contains(&"search-type"),
                "{search}"
            );
            if interactions.contains(&"search-type") {
                for p in resource["searchParam"].as_array().unwrap() {
                    let name = p["name"].as_str().unwrap();
                    let path = match name {
                        "patient" => format!("{base}/{ty}?patient:identifier={NHS}|{sample_value}"),
                        other => format!("{base}/{ty}?patient={sample_value}&{other}=CP-IS"),
                    };
                    let found = get_ok(&app, &path, &amina).await;
                    assert!(found["total"].as_i64().unwrap() > 0, "{path}");
                }
                for include in resource["searchInclude"].as_array().into_iter().flatten() {
                    let include = include.as_str().unwrap().replace('|', "%7C");
                    let param = if include.starts_with("CarePlan:") {
                        "_include:iterate"
                    } else {
                        "_include"
                    };
                    get_ok(
                        &app,
                        &format!("{base}/{ty}?patient={sample_value}&{param}={include}"),
                        &amina,
                    )
                    .await;
                }
            }
        }
        // Reads: each id a search returns, at the type the statement lists as readable.
        let readable = readable_types(&cs);
        let everything = if base == B {
            get_ok(&app, &format!("{B}/CareTeam?patient={CHILD}"), &amina).await
        } else {
            get_ok(
                &app,
                &format!("{C}/Flag?patient={CHILD}&code=CP-IS"),
                &amina,
            )
            .await
        };
        for r in resources(&everything) {
            let ty = r["resourceType"].as_str().unwrap();
            let path = format!("{base}/{ty}/{}", r["id"].as_str().unwrap());
            let res = view(&app, Method::GET, &path, Some(&amina), &[]).await;
            assert_eq!(
                res.status() == 200,
                readable.contains(&ty.to_string()),
                "{path}"
            );
        }
    }
    let native = body(app.get("/metadata", &app.ops()).await)
        .await
        .to_string();
    for ty in ["CareTeam", "CarePlan", "PractitionerRole", "PatientFlag"] {
        assert!(
            !native.contains(ty),
            "the native statement is unchanged: no {ty}"
        );
    }
}

/// View B does not read AuditEvents by id (NHS-COMPAT §13): 405 with `Allow`, whatever the id.
#[tokio::test]
async fn view_b_audit_event_read_is_405_with_allow() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    let history = get_ok(
        &app,
        &format!("{B}/AuditEvent?patient:identifier={NHS}|{CHILD}"),
        &amina,
    )
    .await;
    let id = history["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = audit_rows(&app);
    for (method, path) in [
        (Method::GET, format!("{B}/AuditEvent/{id}")),
        (Method::GET, format!("{B}/AuditEvent/no-such-id")),
        (Method::DELETE, format!("{B}/AuditEvent/{id}")),
    ] {
        let res = view(&app, method.clone(), &path, Some(&amina), &[]).await;
        assert_eq!(res.status(), 405, "{method} {path}");
        assert!(res.headers().contains_key("allow"), "{method} {path}");
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(spine_code(&outcome), "UNSUPPORTED_SERVICE", "{outcome}");
        assert_eq!(
            outcome["meta"]["profile"][0],
            "https://fhir.hl7.org.uk/StructureDefinition/UKCore-OperationOutcome"
        );
    }
    assert_eq!(audit_rows(&app), before, "nothing read, nothing recorded");
}
