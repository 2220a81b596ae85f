// fhir-kit-client (npm) against the sandbox, as an integrator would write it: a search with
// postSearch (POST _search), instance history, a transaction upload, read. Every resource
// received is saved for validation with @medplum/core. Any error fails the run.
//
//   node fhirkit_check.mjs BASE HEALTH_TOKEN SOCIAL_TOKEN OPS_TOKEN OUT_DIR
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "fhir-kit-client";

const [base, health, social, ops, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const received = [];
const NHS = "https://fhir.nhs.uk/Id/nhs-number|9449306753";

function client(token) {
  return new Client({ baseUrl: base, customHeaders: { Authorization: `Bearer ${token}` } });
}

function check(condition, what) {
  if (!condition) {
    throw new Error(`fhir-kit-client: ${what}`);
  }
  console.log(`fhir-kit-client: ok - ${what}`);
}

function keepBundle(bundle) {
  received.push(bundle);
  for (const entry of bundle.entry ?? []) {
    received.push(entry.resource);
  }
  return bundle;
}

const clinician = client(health);
const la = client(social);

// A clinician's lookup, posted as a form (POST Flag/_search).
const posted = keepBundle(
  await clinician.search({
    resourceType: "Flag",
    searchParams: { "patient:identifier": NHS, _include: "Flag:author" },
    options: { postSearch: true },
  }),
);
check(posted.total >= 1 && posted.entry.some((e) => e.resource.resourceType === "Organization"), "search with postSearch");

// The LA's plans, then one plan's history.
const plans = keepBundle(await la.search({ resourceType: "EpisodeOfCare", searchParams: { _count: 10 } }));
check(plans.total >= 1, "search of the LA's plans");
const planId = plans.entry.find((e) => e.resource.resourceType === "EpisodeOfCare").resource.id;
const history = keepBundle(await la.history({ resourceType: "EpisodeOfCare", id: planId }));
check(history.type === "history" && history.entry.length >= 1, "instance history");
received.push(await la.read({ resourceType: "EpisodeOfCare", id: planId }));

// A transaction upload: a conditional create of one plan.
const system = "https://fhir.e09000030.gov.uk/Id/plan";
const transaction = {
  resourceType: "Bundle",
  type: "transaction",
  entry: [
    {
      fullUrl: "urn:uuid:6f1b8a8e-2c1d-4e1f-9b0a-3b6f0f6d2a11",
      resource: {
        resourceType: "EpisodeOfCare",
        identifier: [{ system, value: "FHIRKIT-1" }],
        status: "active",
        type: [{ coding: [{ system: "http://snomed.info/sct", code: "764841000000100" }] }],
        patient: { identifier: { system: "https://fhir.nhs.uk/Id/nhs-number", value: "9000000009" } },
        managingOrganization: { identifier: { system: "https://fhir.nhs.uk/Id/ods-organization-code", value: "E09000030" } },
        period: { start: "2026-04-01" },
      },
      request: { method: "POST", url: "EpisodeOfCare", ifNoneExist: `identifier=${system}|FHIRKIT-1` },
    },
  ],
};
const response = await la.transaction({ body: transaction });
check(response.type === "transaction-response" && response.entry[0].response.status.startsWith("201"), "transaction");
received.push(response);

received.forEach((resource, n) => {
  writeFileSync(join(out, `fhirkit-${String(n).padStart(3, "0")}.json`), JSON.stringify(resource));
});
console.log(`fhir-kit-client: ${received.length} resources saved`);
