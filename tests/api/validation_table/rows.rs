//! The table: one row per way an upload can be wrong, by target.

use serde_json::{json, Value};

use super::*;

/// The table, section by section.
pub(super) fn rows() -> Vec<Row> {
    [
        organization_created(),
        organization_updated(),
        plan_elements(),
        plan_types_and_dates(),
        plan_numbers_and_codes(),
        plan_bodies(),
        plan_updated(),
        plan_uploaded(),
        validated(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Organization, created by operations.
#[rustfmt::skip]
fn organization_created() -> Vec<Row> {
    use Target::*;
    vec![
        row("an LA without a name", CreateOrganization, |o| remove(o, "/name"))
            .is(422, MISSING, "Organization.name"),
        row("an LA without an identifier", CreateOrganization, |o| remove(o, "/identifier"))
            .is(422, MISSING, "Organization.identifier"),
        row("an LA with an empty identifier list", CreateOrganization, |o| set(o, "/identifier", json!([])))
            .is(422, MISSING, "Organization.identifier"),
        row("an LA with two identifiers", CreateOrganization, |o| duplicate_first(o, "/identifier"))
            .is(422, NOT_ALLOWED, "Organization.identifier[1]"),
        row("an LA identified in another system", CreateOrganization, |o| set(o, "/identifier/0/system", json!("https://example.org/la")))
            .is(422, INVALID, "Organization.identifier[0].system"),
        row("an LA whose ODS code has a space", CreateOrganization, |o| set(o, "/identifier/0/value", json!("E06 000099")))
            .is(422, INVALID, "Organization.identifier[0].value"),
        row("an LA whose identifier has no value", CreateOrganization, |o| remove(o, "/identifier/0/value"))
            .is(422, MISSING, "Organization.identifier[0].value"),
        row("an LA whose identifier has a use", CreateOrganization, |o| set(o, "/identifier/0/use", json!("official")))
            .is(422, NOT_ALLOWED, "Organization.identifier[0].use"),
        row("an LA with an empty name", CreateOrganization, |o| set(o, "/name", json!("")))
            .is(422, INVALID, "Organization.name"),
        row("an LA whose name is a number", CreateOrganization, |o| set(o, "/name", json!(42)))
            .is(422, INVALID, "Organization.name"),
        row("an LA whose active is a string", CreateOrganization, |o| set(o, "/active", json!("yes")))
            .is(422, INVALID, "Organization.active"),
        row("an LA without telecom", CreateOrganization, |o| remove(o, "/telecom"))
            .is(422, MISSING, "Organization.telecom"),
        row("an LA with only its office-hours phone", CreateOrganization, |o| remove(o, "/telecom/1"))
            .is(422, MISSING, "Organization.telecom"),
        row("an LA with two office-hours phones and no emergency duty phone", CreateOrganization, |o| set(o, "/telecom/1/use", json!("work")))
            .is(422, MISSING, "Organization.telecom")
            .and(NOT_ALLOWED, "Organization.telecom[1]"),
        row("an LA with an email address", CreateOrganization, |o| set(o, "/telecom/0/system", json!("email")))
            .is(422, INVALID, "Organization.telecom[0].system"),
        row("an LA with a home phone", CreateOrganization, |o| set(o, "/telecom/1/use", json!("home")))
            .is(422, INVALID, "Organization.telecom[1].use"),
        row("an LA phone without a number", CreateOrganization, |o| remove(o, "/telecom/0/value"))
            .is(422, MISSING, "Organization.telecom[0].value"),
        row("an LA phone with a rank", CreateOrganization, |o| set(o, "/telecom/0/rank", json!(1)))
            .is(422, NOT_ALLOWED, "Organization.telecom[0].rank"),
        row("an LA with an address", CreateOrganization, |o| set(o, "/address", json!([{"text": "Town Hall"}])))
            .is(422, NOT_ALLOWED, "Organization.address"),
        row("an LA with an alias", CreateOrganization, |o| set(o, "/alias", json!(["LBTH"])))
            .is(422, NOT_ALLOWED, "Organization.alias"),
        row("an LA with an extension", CreateOrganization, |o| set(o, "/extension", json!([{"url": "https://example.org/x", "valueString": "x"}])))
            .is(422, NOT_ALLOWED, "Organization.extension"),
        row("an LA with a narrative that is not XHTML", CreateOrganization, |o| set(o, "/text", json!({"status": "generated", "div": "Tower Hamlets"})))
            .is(422, INVALID, "Organization.text.div"),
        row("an LA with an id that is not a FHIR id", CreateOrganization, |o| set(o, "/id", json!("has space")))
            .is(422, INVALID, "Organization.id"),
        row("an LA whose ODS code is registered already", CreateOrganization, |o| set(o, "/identifier/0/value", json!(LA_A)))
            .is(409, DUPLICATE, "Organization.identifier"),
        row("an LA body that is a Patient", CreateOrganization, |o| set(o, "/resourceType", json!("Patient")))
            .whole(400, UNPARSEABLE),
        raw("an LA sent as text/plain", CreateOrganization, la_json("E06000099").to_string().as_bytes(), Some("text/plain"))
            .whole(415, UNSUPPORTED),
        raw("an LA sent without a Content-Type", CreateOrganization, la_json("E06000099").to_string().as_bytes(), None)
            .whole(415, UNSUPPORTED),
        raw("an LA larger than the body limit", CreateOrganization, &oversized_la(), FHIR_JSON)
            .whole(413, TOO_LARGE),

    ]
}

/// Organization, updated by operations.
#[rustfmt::skip]
fn organization_updated() -> Vec<Row> {
    use Target::*;
    vec![
        row("an LA update whose body names another id", UpdateOrganization, |o| set(o, "/id", json!("another-id")))
            .whole(400, UNPARSEABLE),
        row("an LA update without the id", UpdateOrganization, |o| remove(o, "/id"))
            .whole(400, UNPARSEABLE),
        row("an LA update whose meta.lastUpdated is a date", UpdateOrganization, |o| set(o, "/meta/lastUpdated", json!("2026-01-05")))
            .is(422, INVALID, "Organization.meta.lastUpdated"),
        row("an LA update whose meta.versionId is a number", UpdateOrganization, |o| set(o, "/meta/versionId", json!(1)))
            .is(422, INVALID, "Organization.meta.versionId"),
        row("an LA update with a meta.source", UpdateOrganization, |o| set(o, "/meta/source", json!("https://example.org")))
            .is(422, NOT_ALLOWED, "Organization.meta.source"),
        row("an LA update with an empty phone number", UpdateOrganization, |o| set(o, "/telecom/1/value", json!("")))
            .is(422, INVALID, "Organization.telecom[1].value"),
        row("an LA update whose identifier has no system", UpdateOrganization, |o| remove(o, "/identifier/0/system"))
            .is(422, MISSING, "Organization.identifier[0].system"),
        row("an LA update with a contact person", UpdateOrganization, |o| set(o, "/contact", json!([{"name": {"text": "Jo"}}])))
            .is(422, NOT_ALLOWED, "Organization.contact"),
        row("an LA update whose name is null", UpdateOrganization, |o| set(o, "/name", Value::Null))
            .is(422, INVALID, "Organization.name"),
        raw("an LA update that is not JSON", UpdateOrganization, b"{\"resourceType\": \"Organization\",", FHIR_JSON)
            .whole(400, UNPARSEABLE),

    ]
}

/// EpisodeOfCare, created by its LA: elements missing, or not allowed.
#[rustfmt::skip]
fn plan_elements() -> Vec<Row> {
    use Target::*;
    vec![
        row("a plan without a status", CreatePlan, |p| remove(p, "/status"))
            .is(422, MISSING, "EpisodeOfCare.status"),
        row("a plan without an identifier", CreatePlan, |p| remove(p, "/identifier"))
            .is(422, MISSING, "EpisodeOfCare.identifier"),
        row("a plan without a type", CreatePlan, |p| remove(p, "/type"))
            .is(422, MISSING, "EpisodeOfCare.type"),
        row("a plan without a patient", CreatePlan, |p| remove(p, "/patient"))
            .is(422, MISSING, "EpisodeOfCare.patient"),
        row("a plan without a managing LA", CreatePlan, |p| remove(p, "/managingOrganization"))
            .is(422, MISSING, "EpisodeOfCare.managingOrganization"),
        row("a plan without a period", CreatePlan, |p| remove(p, "/period"))
            .is(422, MISSING, "EpisodeOfCare.period"),
        row("a plan without a start date", CreatePlan, |p| remove(p, "/period/start"))
            .is(422, MISSING, "EpisodeOfCare.period.start"),
        row("a plan whose patient has no identifier", CreatePlan, |p| set(p, "/patient", json!({})))
            .is(422, MISSING, "EpisodeOfCare.patient.identifier"),
        row("a plan whose patient has no NHS number", CreatePlan, |p| remove(p, "/patient/identifier/value"))
            .is(422, MISSING, "EpisodeOfCare.patient.identifier.value"),
        row("a plan whose type has no code", CreatePlan, |p| remove(p, "/type/0/coding/0/code"))
            .is(422, MISSING, "EpisodeOfCare.type[0].coding[0].code"),
        row("a plan whose identifier has no value", CreatePlan, |p| remove(p, "/identifier/0/value"))
            .is(422, MISSING, "EpisodeOfCare.identifier[0].value"),
        row("a plan with a diagnosis", CreatePlan, |p| set(p, "/diagnosis", json!([{"condition": {"display": "neglect"}}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.diagnosis"),
        row("a plan with a reason", CreatePlan, |p| set(p, "/reason", json!([{"text": "neglect"}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.reason"),
        row("a plan with a care team", CreatePlan, |p| set(p, "/team", json!([{"reference": "CareTeam/1"}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.team"),
        row("a plan with an extension", CreatePlan, |p| set(p, "/extension", json!([{"url": "https://example.org/x", "valueString": "x"}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.extension"),
        row("a plan with a modifier extension", CreatePlan, |p| set(p, "/modifierExtension", json!([{"url": "https://example.org/x", "valueBoolean": true}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.modifierExtension"),
        row("a plan with a care manager", CreatePlan, |p| set(p, "/careManager", json!({"display": "J Bloggs"})))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.careManager"),
        row("a plan with contained resources", CreatePlan, |p| set(p, "/contained", json!([{"resourceType": "Patient"}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.contained"),
        row("a plan with a status history", CreatePlan, |p| set(p, "/statusHistory", json!([{"status": "active"}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.statusHistory"),
        row("a plan with a primitive extension on its status", CreatePlan, |p| set(p, "/_status", json!({"id": "s"})))
            .is(422, NOT_ALLOWED, "EpisodeOfCare._status"),
        row("a plan naming the child", CreatePlan, |p| set(p, "/patient/display", json!("A Child")))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.patient.display"),
        row("a plan referencing a Patient resource", CreatePlan, |p| set(p, "/patient/reference", json!("Patient/123")))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.patient.reference"),
        row("a plan whose NHS number has a use", CreatePlan, |p| set(p, "/patient/identifier/use", json!("official")))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.patient.identifier.use"),
        row("a plan type coding with a version", CreatePlan, |p| set(p, "/type/0/coding/0/version", json!("2024")))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.type[0].coding[0].version"),
        row("a plan period with a note", CreatePlan, |p| set(p, "/period/note", json!("court order")))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.period.note"),
        row("a managing LA reference with an identifier type", CreatePlan, |p| set(p, "/managingOrganization/identifier/type", json!({"text": "ODS"})))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.managingOrganization.identifier.type"),
        row("a plan identifier with a period", CreatePlan, |p| set(p, "/identifier/0/period", json!({"start": "2026-01-05"})))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.identifier[0].period"),
    ]
}

/// EpisodeOfCare, created by its LA: JSON of the wrong type, and dates.
#[rustfmt::skip]
fn plan_types_and_dates() -> Vec<Row> {
    use Target::*;
    vec![
        row("a plan whose status is a number", CreatePlan, |p| set(p, "/status", json!(1)))
            .is(422, INVALID, "EpisodeOfCare.status"),
        row("a plan whose identifier is an object", CreatePlan, |p| set(p, "/identifier", json!({"system": "https://example.org", "value": "P-NEW"})))
            .is(422, INVALID, "EpisodeOfCare.identifier"),
        row("a plan whose type is an object", CreatePlan, |p| set(p, "/type", json!({"coding": [{"system": SNOMED, "code": CPP}]})))
            .is(422, INVALID, "EpisodeOfCare.type"),
        row("a plan whose period is a string", CreatePlan, |p| set(p, "/period", json!("2026-01-05")))
            .is(422, INVALID, "EpisodeOfCare.period"),
        row("a plan whose NHS number is a JSON number", CreatePlan, |p| set(p, "/patient/identifier/value", json!(9_000_000_009_u64)))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan starting in month 13", CreatePlan, |p| set(p, "/period/start", json!("2026-13-01")))
            .is(422, INVALID, "EpisodeOfCare.period.start"),
        row("a plan starting on 30 February", CreatePlan, |p| set(p, "/period/start", json!("2026-02-30")))
            .is(422, INVALID, "EpisodeOfCare.period.start"),
        row("a plan start written day first", CreatePlan, |p| set(p, "/period/start", json!("05/01/2026")))
            .is(422, INVALID, "EpisodeOfCare.period.start"),
        row("a plan start of month precision", CreatePlan, |p| set(p, "/period/start", json!("2026-01")))
            .is(422, INVALID, "EpisodeOfCare.period.start"),
        row("a plan start with a time but no zone", CreatePlan, |p| set(p, "/period/start", json!("2026-01-05T10:00:00")))
            .is(422, INVALID, "EpisodeOfCare.period.start"),
        row("a plan ending on 32 January", CreatePlan, |p| set(p, "/period/end", json!("2026-01-32")))
            .is(422, INVALID, "EpisodeOfCare.period.end"),
        row("a plan ending before it starts", CreatePlan, |p| set(p, "/period/end", json!("2026-01-04")))
            .is(422, RULE, "EpisodeOfCare.period.end"),
    ]
}

/// EpisodeOfCare, created by its LA: NHS numbers, systems, codes, statuses, the LA and the
/// identifier, and several problems at once.
#[rustfmt::skip]
fn plan_numbers_and_codes() -> Vec<Row> {
    use Target::*;
    vec![
        row("a plan whose NHS number has a wrong check digit", CreatePlan, |p| set(p, "/patient/identifier/value", json!("9000000008")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan whose NHS number check value would be 10", CreatePlan, |p| set(p, "/patient/identifier/value", json!("0000000060")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan whose NHS number has nine digits", CreatePlan, |p| set(p, "/patient/identifier/value", json!("900000000")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan whose NHS number has eleven digits", CreatePlan, |p| set(p, "/patient/identifier/value", json!("90000000090")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan whose NHS number has a letter O", CreatePlan, |p| set(p, "/patient/identifier/value", json!("9OOOOOOOO9")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan whose NHS number is spaced", CreatePlan, |p| set(p, "/patient/identifier/value", json!("900 000 0009")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan whose patient is identified by another system", CreatePlan, |p| set(p, "/patient/identifier/system", json!("https://fhir.nhs.uk/Id/local")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.system"),
        row("a plan whose LA is identified by another system", CreatePlan, |p| set(p, "/managingOrganization/identifier/system", json!("https://example.org/la")))
            .is(422, INVALID, "EpisodeOfCare.managingOrganization.identifier.system"),
        row("a plan type coded in LOINC", CreatePlan, |p| set(p, "/type/0/coding/0/system", json!("http://loinc.org")))
            .is(422, INVALID, "EpisodeOfCare.type[0].coding[0].system"),
        row("a plan type not in the ValueSet", CreatePlan, |p| set(p, "/type/0/coding/0/code", json!("1234567")))
            .is(422, INVALID, "EpisodeOfCare.type[0].coding[0].code"),
        row("a plan type with a made-up display", CreatePlan, |p| set(p, "/type/0/coding/0/display", json!("Child in need")))
            .is(422, INVALID, "EpisodeOfCare.type[0].coding[0].display"),
        row("a CPP code with the looked-after display", CreatePlan, |p| set(p, "/type/0/coding/0/display", json!("Looked after child")))
            .is(422, INVALID, "EpisodeOfCare.type[0].coding[0].display"),
        row("a plan with two types", CreatePlan, |p| duplicate_first(p, "/type"))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.type[1]"),
        row("a plan type with two codings", CreatePlan, |p| duplicate_first(p, "/type/0/coding"))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.type[0].coding[1]"),
        row("a plan with two identifiers", CreatePlan, |p| duplicate_first(p, "/identifier"))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.identifier[1]"),
        row("a plan with an empty type list", CreatePlan, |p| set(p, "/type", json!([])))
            .is(422, MISSING, "EpisodeOfCare.type"),
        row("a plan whose status is planned", CreatePlan, |p| set(p, "/status", json!("planned")))
            .is(422, INVALID, "EpisodeOfCare.status"),
        row("a plan whose status is in capitals", CreatePlan, |p| set(p, "/status", json!("ACTIVE")))
            .is(422, INVALID, "EpisodeOfCare.status"),
        row("a plan whose status is waitlist", CreatePlan, |p| set(p, "/status", json!("waitlist")))
            .is(422, INVALID, "EpisodeOfCare.status"),
        row("a plan of an unregistered LA", CreatePlan, |p| set(p, "/managingOrganization/identifier/value", json!(UNKNOWN_LA)))
            .by(UNKNOWN_LA)
            .is(422, INVALID, "EpisodeOfCare.managingOrganization.identifier.value"),
        row("a plan whose identifier is taken", CreatePlan, |p| set(p, "/identifier/0/value", json!("P-1")))
            .is(409, DUPLICATE, "EpisodeOfCare.identifier"),
        row("a plan with four problems at once", CreatePlan, |p| {
            set(p, "/patient/identifier/value", json!("9000000008"));
            set(p, "/reason", json!([{"text": "neglect"}]));
            remove(p, "/period/start");
            set(p, "/type/0/coding/0/code", json!("1234567"));
        })
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value")
            .and(NOT_ALLOWED, "EpisodeOfCare.reason")
            .and(MISSING, "EpisodeOfCare.period.start")
            .and(INVALID, "EpisodeOfCare.type[0].coding[0].code"),
        row("a plan of an unregistered LA that also ends before it starts", CreatePlan, |p| {
            set(p, "/managingOrganization/identifier/value", json!(UNKNOWN_LA));
            set(p, "/period/end", json!("2025-12-31"));
        })
            .by(UNKNOWN_LA)
            .is(422, RULE, "EpisodeOfCare.period.end")
            .and(INVALID, "EpisodeOfCare.managingOrganization.identifier.value"),
    ]
}

/// EpisodeOfCare, created by its LA: bodies that are not a plan.
#[rustfmt::skip]
fn plan_bodies() -> Vec<Row> {
    use Target::*;
    vec![
        row("a plan body that is a Flag", CreatePlan, |p| set(p, "/resourceType", json!("Flag")))
            .whole(400, UNPARSEABLE),
        row("a plan body without a resourceType", CreatePlan, |p| remove(p, "/resourceType"))
            .whole(400, UNPARSEABLE),
        raw("a plan body that is not JSON", CreatePlan, b"{not json", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan body with a trailing comma", CreatePlan, b"{\"resourceType\": \"EpisodeOfCare\",}", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("an empty plan body", CreatePlan, b"", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan body that is not UTF-8", CreatePlan, b"{\"resourceType\": \"Episode\xff\"}", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan body that is a JSON array", CreatePlan, b"[{\"resourceType\": \"EpisodeOfCare\"}]", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan body that is a JSON string", CreatePlan, b"\"EpisodeOfCare\"", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan body that is JSON null", CreatePlan, b"null", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan body nested too deeply to parse", CreatePlan, format!("{}{}", "[".repeat(5000), "]".repeat(5000)).as_bytes(), FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan sent as XML", CreatePlan, b"<EpisodeOfCare/>", Some("application/fhir+xml"))
            .whole(415, UNSUPPORTED),
        raw("a plan larger than the body limit", CreatePlan, &oversized_plan(), FHIR_JSON)
            .whole(413, TOO_LARGE),

    ]
}

/// EpisodeOfCare, PUT by id.
#[rustfmt::skip]
fn plan_updated() -> Vec<Row> {
    use Target::*;
    vec![
        row("a plan update that reactivates a withdrawn plan", UpdateWithdrawnPlan, |p| set(p, "/status", json!("active")))
            .is(422, FORBIDDEN_UPDATE, "EpisodeOfCare.status"),
        row("a plan update that finishes a withdrawn plan", UpdateWithdrawnPlan, |p| set(p, "/status", json!("finished")))
            .is(422, FORBIDDEN_UPDATE, "EpisodeOfCare.status"),
        row("a plan update ending before the start", UpdatePlan, |p| set(p, "/period/end", json!("2025-01-01")))
            .is(422, RULE, "EpisodeOfCare.period.end"),
        row("a plan update whose meta.lastUpdated has no zone", UpdatePlan, |p| set(p, "/meta/lastUpdated", json!("2026-01-05T10:00:00")))
            .is(422, INVALID, "EpisodeOfCare.meta.lastUpdated"),
        row("a plan update with a narrative without its div", UpdatePlan, |p| set(p, "/text", json!({"status": "generated"})))
            .is(422, MISSING, "EpisodeOfCare.text.div"),
        row("a plan update with an unknown status", UpdatePlan, |p| set(p, "/status", json!("onhold")))
            .is(422, INVALID, "EpisodeOfCare.status"),
        row("a plan update with a bad NHS number", UpdatePlan, |p| set(p, "/patient/identifier/value", json!("9449306754")))
            .is(422, INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("a plan update with a reason", UpdatePlan, |p| set(p, "/reason", json!([{"text": "neglect"}])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.reason"),
        row("a plan update whose body names another id", UpdatePlan, |p| set(p, "/id", json!("another-id")))
            .whole(400, UNPARSEABLE),
        row("a plan update that is an Organization", UpdatePlan, |p| set(p, "/resourceType", json!("Organization")))
            .whole(400, UNPARSEABLE),
        raw("a plan update that is a JSON number", UpdatePlan, b"42", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("a plan update sent as application/xml", UpdatePlan, b"<EpisodeOfCare/>", Some("application/xml"))
            .whole(415, UNSUPPORTED),

    ]
}

/// EpisodeOfCare, conditional PUT by identifier.
#[rustfmt::skip]
fn plan_uploaded() -> Vec<Row> {
    use Target::*;
    vec![
        row("an upload whose plan reference differs from the URL", UpsertPlan, |p| set(p, "/identifier/0/value", json!("P-2")))
            .is(422, INVALID, "EpisodeOfCare.identifier[0].value"),
        row("an upload whose identifier system differs from the URL", UpsertPlan, |p| set(p, "/identifier/0/system", json!("https://fhir.other.gov.uk/Id/plan")))
            .is(422, INVALID, "EpisodeOfCare.identifier[0].system"),
        row("an upload that reactivates a withdrawn plan", UpsertWithdrawnPlan, |p| set(p, "/status", json!("active")))
            .is(422, FORBIDDEN_UPDATE, "EpisodeOfCare.status"),
        row("an upload of a new plan of an unregistered LA", UpsertNewPlan, |p| set(p, "/managingOrganization/identifier/value", json!(UNKNOWN_LA)))
            .by(UNKNOWN_LA)
            .is(422, INVALID, "EpisodeOfCare.managingOrganization.identifier.value"),
        row("an upload without a start date", UpsertPlan, |p| remove(p, "/period/start"))
            .is(422, MISSING, "EpisodeOfCare.period.start"),
        row("an upload with a team", UpsertNewPlan, |p| set(p, "/team", json!([])))
            .is(422, NOT_ALLOWED, "EpisodeOfCare.team"),
        row("an upload of a plan type not in the ValueSet", UpsertNewPlan, |p| set(p, "/type/0/coding/0/code", json!("999")))
            .is(422, INVALID, "EpisodeOfCare.type[0].coding[0].code"),
        raw("an upload that is not JSON", UpsertPlan, b"resourceType=EpisodeOfCare", FHIR_JSON)
            .whole(400, UNPARSEABLE),

    ]
}

/// `$validate`: reported (200), not refused, but for bodies that are not a resource.
#[rustfmt::skip]
fn validated() -> Vec<Row> {
    use Target::*;
    vec![
        row("validating a plan with a diagnosis", ValidatePlan, |p| set(p, "/diagnosis", json!([])))
            .reports(NOT_ALLOWED, "EpisodeOfCare.diagnosis"),
        row("validating a plan with a bad check digit", ValidatePlan, |p| set(p, "/patient/identifier/value", json!("9000000008")))
            .reports(INVALID, "EpisodeOfCare.patient.identifier.value"),
        row("validating a plan of an unregistered LA", ValidatePlan, |p| set(p, "/managingOrganization/identifier/value", json!(UNKNOWN_LA)))
            .by(UNKNOWN_LA)
            .reports(INVALID, "EpisodeOfCare.managingOrganization.identifier.value"),
        row("validating another LA's plan", ValidatePlan, |_| {})
            .by(LA_B)
            .reports(NOT_OWN_LA, "EpisodeOfCare.managingOrganization.identifier.value"),
        row("validating a plan with two problems", ValidatePlan, |p| {
            set(p, "/period/end", json!("2020-01-01"));
            set(p, "/extension", json!([]));
        })
            .reports(RULE, "EpisodeOfCare.period.end")
            .and(NOT_ALLOWED, "EpisodeOfCare.extension"),
        row("validating an LA without a name", ValidateOrganization, |o| remove(o, "/name"))
            .reports(MISSING, "Organization.name"),
        row("validating a plan body that is a Patient", ValidatePlan, |p| set(p, "/resourceType", json!("Patient")))
            .whole(400, UNPARSEABLE),
        raw("validating a plan that is not JSON", ValidatePlan, b"{\"a\":", FHIR_JSON)
            .whole(400, UNPARSEABLE),
        raw("validating a plan sent as text/plain", ValidatePlan, plan_json("9000000009", LA_A, "P-NEW").to_string().as_bytes(), Some("text/plain"))
            .whole(415, UNSUPPORTED),
    ]
}
