//! Which plans the views list, in what order, and how each status shows.

use super::*;

#[tokio::test]
async fn several_plans_of_several_las_for_one_child_are_each_listed_newest_first() {
    let (app, _clock) = sandbox().await;
    plan(&app, CHILD, LA_B, "B-1", "active", "2026-03-01", None).await;
    plan(&app, CHILD, LA_A, "A-2", "active", "2026-07-01", None).await;
    let amina = amina(&app);
    let b = get_ok(&app, &format!("{B}/CareTeam?patient={CHILD}"), &amina).await;
    assert_eq!(b["total"], 3);
    let listed: Vec<(&str, &str)> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resource"]["period"]["start"].as_str().unwrap(),
                e["resource"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("2026-07-01", "London Borough of Tower Hamlets"),
            ("2026-03-01", "Birmingham City Council"),
            ("2026-01-05", "London Borough of Tower Hamlets")
        ]
    );
    let c = get_ok(
        &app,
        &format!("{C}/Flag?patient={CHILD}&code=CP-IS"),
        &amina,
    )
    .await;
    assert_eq!(c["total"], 3);
    let care_teams = resources(&c)
        .into_iter()
        .filter(|r| r["resourceType"] == "CareTeam")
        .count();
    assert_eq!(care_teams, 2, "one CareTeam per LA");
}

#[tokio::test]
async fn withdrawn_and_deleted_plans_are_absent_and_each_status_maps_as_the_contract_says() {
    let (app, _clock) = sandbox().await;
    let nhs = "9000000017";
    // A plan (reference, status, start, end), and what the views show of it today: the
    // CareTeam's status in B, the Flag's and the CarePlan's in C. DEL is deleted once made.
    #[rustfmt::skip]
    let table = [
        ("FUT", "active", "2027-01-04", None, "proposed", "inactive", "draft"),
        ("END", "active", "2026-01-05", Some("2026-11-30"), "inactive", "inactive", "completed"),
        ("FIN", "finished", "2026-02-01", Some("2026-06-30"), "inactive", "inactive", "completed"),
        ("CAN", "cancelled", "2026-03-01", None, "inactive", "inactive", "revoked"),
        ("EIE", "entered-in-error", "2026-04-01", None, "absent", "absent", "absent"),
        ("DEL", "active", "2026-05-01", None, "absent", "absent", "absent"),
    ];
    let mut ids = std::collections::HashMap::new();
    for (reference, status, start, end, ..) in table {
        let id = plan(&app, nhs, LA_A, reference, status, start, end).await;
        ids.insert(reference, id);
    }
    assert_eq!(
        app.delete(&format!("/EpisodeOfCare/{}", ids["DEL"]), &app.social(LA_A))
            .await
            .status(),
        204
    );
    let amina = amina(&app);

    let b = get_ok(&app, &format!("{B}/CareTeam?patient={nhs}"), &amina).await;
    let status_of = |bundle: &Value, ty: &str, id: &str| -> String {
        resources(bundle)
            .into_iter()
            .find(|r| r["resourceType"] == ty && r["id"] == id)
            .map(|r| r["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| "absent".into())
    };
    let c = get_ok(&app, &format!("{C}/Flag?patient={nhs}&code=CP-IS"), &amina).await;
    let mut failures = Vec::new();
    for (reference, .., care_team, flag, care_plan) in table {
        let id = &ids[reference];
        let shown = (
            status_of(&b, "CareTeam", id),
            status_of(&c, "Flag", id),
            status_of(&c, "CarePlan", id),
        );
        if shown != (care_team.into(), flag.into(), care_plan.into()) {
            failures.push(format!(
                "{reference}: expected B CareTeam {care_team}, C Flag {flag}, C CarePlan \
                 {care_plan}; got {shown:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(b["total"], 4);
    for (reference, status) in [("EIE", 404), ("DEL", 410)] {
        let id = &ids[reference];
        for path in [
            format!("{B}/CareTeam/{id}"),
            format!("{C}/Flag/{id}"),
            format!("{C}/CarePlan/{id}"),
        ] {
            let res = view(&app, Method::GET, &path, Some(&amina), &[]).await;
            assert_eq!(res.status(), status, "{reference}: {path}");
        }
    }
}

#[tokio::test]
async fn no_plan_is_an_empty_searchset_and_nothing_is_recorded() {
    let (app, _clock) = sandbox().await;
    let amina = amina(&app);
    let before = audit_rows(&app);
    for path in [
        format!("{B}/CareTeam?patient=9000000017"),
        format!("{B}/AuditEvent?patient=9000000017"),
        format!("{C}/Flag?patient=9000000017"),
        format!("{C}/PatientFlag?patient={CHILD}&code=FGM"),
        format!("{C}/Flag?patient={CHILD}&category=https://example.org|other"),
    ] {
        let found = get_ok(&app, &path, &amina).await;
        assert_eq!(found["total"], 0, "{path}");
        assert_eq!(found["entry"].as_array().map_or(0, Vec::len), 0, "{path}");
    }
    assert_eq!(audit_rows(&app), before, "nothing recorded");
}
