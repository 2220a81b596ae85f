// Issue #15: cpis verifies tokens from a real OpenID Connect provider (oidc-provider, on
// loopback), found by discovery from CPIS_JWT_ISSUER, with a Keycloak-style claim mapping.
//
//   node oidc_check.mjs path/to/cpis
//
// 1. Tokens the provider issues (client credentials, JWT access tokens signed with key A) are
//    accepted: an operations token and a health-care token whose role is in realm_access.roles.
// 2. The provider down: tokens signed by the cached key A still work; a token with a kid never
//    seen is 401 (not 500), and an HS256 token is 401 (the algorithm is pinned).
// 3. The provider back with its key rotated (only B): a token with B's kid is accepted without
//    restarting cpis, and a token signed by the removed key A is 401.
// Exits non-zero on the first check that fails.
import { spawn } from "node:child_process";
import { generateKeyPairSync, createSecretKey } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Provider from "oidc-provider";
import { SignJWT } from "jose";

const cpisBinary = process.argv[2];
if (!cpisBinary) throw new Error("usage: node oidc_check.mjs path/to/cpis");

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function signingKey(kid) {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...privateKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" } };
}

// Each client stands for a user of one role; the claims are where Keycloak puts them.
const CLAIMS = {
  "ops-console": { realm_access: { roles: ["offline_access", "cpis-operations"] } },
  "ed-epr": {
    realm_access: { roles: ["cpis-clinician"] },
    cpis_org: "RJ1",
    name: "Dr Oidc Clinician",
  },
};

async function startProvider(port, keys) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: Object.keys(CLAIMS).map((client_id) => ({
      client_id,
      client_secret: `${client_id}-secret`,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
    })),
    jwks: { keys: keys.map((k) => k.jwk) },
    scopes: ["cpis"],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => "urn:cpis",
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "cpis",
          audience: "cpis",
          accessTokenTTL: 300,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "RS256" } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => CLAIMS[token.clientId] ?? {},
    ttl: { ClientCredentials: 300 },
  });
  const server = provider.listen(port);
  await new Promise((r) => server.once("listening", r));
  return {
    issuer,
    async stop() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

async function tokenFrom(issuer, client) {
  const res = await fetch(`${issuer}/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: "Basic " + Buffer.from(`${client}:${client}-secret`).toString("base64"),
    },
    body: new URLSearchParams({ grant_type: "client_credentials", scope: "cpis" }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`token endpoint: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

const kidOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url")).kid;

let failures = 0;
function check(what, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${ok ? "" : ` ${detail}`}`);
  if (!ok) failures += 1;
}

async function main() {
  const providerPort = await freePort();
  const cpisPort = await freePort();
  const keyA = signingKey("key-a");
  const keyB = signingKey("key-b");
  let provider = await startProvider(providerPort, [keyA]);

  const dir = mkdtempSync(join(tmpdir(), "cpis-oidc-"));
  const cpis = spawn(cpisBinary, ["serve"], {
    env: {
      PATH: process.env.PATH,
      CPIS_DATABASE_URL: `sqlite://${dir}/oidc.db`,
      CPIS_BIND: `127.0.0.1:${cpisPort}`,
      CPIS_JWT_ISSUER: provider.issuer, // discovery: {issuer}/.well-known/openid-configuration
      CPIS_JWT_AUDIENCE: "cpis",
      CPIS_JWT_ALG: "RS256",
      CPIS_JWT_JWKS_MIN_INTERVAL_SECONDS: "1",
      CPIS_JWT_CLAIM_ROLE: "$.realm_access.roles",
      CPIS_JWT_ROLE_MAP: "cpis-operations=operations,cpis-clinician=health-care",
      CPIS_JWT_CLAIM_ORG: "cpis_org",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${cpisPort}`;
  try {
    for (let i = 0; i < 200; i++) {
      const ready = await fetch(`${base}/_ready`).catch(() => null);
      if (ready?.status === 200) break;
      await sleep(100);
    }
    const get = (path, token) =>
      fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

    // 1. Tokens from the provider, through discovery and its JWKS.
    const opsA = await tokenFrom(provider.issuer, "ops-console");
    const clinicianA = await tokenFrom(provider.issuer, "ed-epr");
    check("the provider signs with key A", kidOf(opsA) === "key-a", kidOf(opsA));
    let res = await get("/FHIR/R4/Organization", opsA);
    check("an operations token (realm role cpis-operations) is accepted", res.status === 200, res.status);
    res = await get("/FHIR/R4/Flag?patient:identifier=9449306753", clinicianA);
    check("a health-care token (realm role cpis-clinician, org from cpis_org) is accepted", res.status === 200, res.status);
    res = await get("/FHIR/R4/EpisodeOfCare", clinicianA);
    check("...and it is health-care: a search without an NHS number is 400", res.status === 400, res.status);
    res = await get("/metrics", opsA);
    check("the operations token reads /metrics", res.status === 200, res.status);

    // 2. The provider down.
    await provider.stop();
    res = await get("/FHIR/R4/Organization", opsA);
    check("provider down: a token signed by the cached key still works", res.status === 200, res.status);
    const keyC = signingKey("key-c");
    const now = Math.floor(Date.now() / 1000);
    const claims = { ...CLAIMS["ops-console"], sub: "ops-console" };
    const unseen = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "key-c" })
      .setIssuer(provider.issuer).setAudience("cpis").setIssuedAt(now).setExpirationTime(now + 300)
      .sign(keyC.privateKey);
    res = await get("/FHIR/R4/Organization", unseen);
    check("provider down: a kid never seen is 401", res.status === 401, res.status);
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", kid: "key-a" })
      .setIssuer(provider.issuer).setAudience("cpis").setIssuedAt(now).setExpirationTime(now + 300)
      .sign(createSecretKey(Buffer.from(JSON.stringify(keyA.jwk))));
    res = await get("/FHIR/R4/Organization", hs);
    check("an HS256 token is 401 (RS256 pinned)", res.status === 401, res.status);

    // 3. The provider back, its signing key rotated: only B is published.
    await sleep(1100); // CPIS_JWT_JWKS_MIN_INTERVAL_SECONDS
    provider = await startProvider(providerPort, [keyB]);
    const opsB = await tokenFrom(provider.issuer, "ops-console");
    check("the provider now signs with key B", kidOf(opsB) === "key-b", kidOf(opsB));
    res = await get("/FHIR/R4/Organization", opsB);
    check("a token with the new kid is accepted without restarting cpis", res.status === 200, res.status);
    res = await get("/FHIR/R4/Organization", opsA);
    check("a token signed by the removed key is 401", res.status === 401, res.status);
    const outcome = await res.json();
    check("...with an OperationOutcome", outcome.resourceType === "OperationOutcome", JSON.stringify(outcome));
    await provider.stop();
  } finally {
    cpis.kill("SIGTERM");
  }
  const code = await new Promise((r) => cpis.once("exit", (c) => r(c)));
  check("cpis exits 0 on SIGTERM", code === 0, code);
  console.log(failures ? `oidc: ${failures} checks failed` : "oidc: PASS");
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
