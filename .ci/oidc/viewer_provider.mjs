// A real OpenID Connect provider (oidc-provider) for the viewer's browser suite (issue #27,
// SPEC §10): the viewer signs in with the authorization code flow, PKCE required (S256), the
// login and consent pages the provider's own (its development interactions: any password; the
// login name picks the account). Started by .ci/viewer_oidc.sh; runs until it is killed.
//
//   node viewer_provider.mjs <port> <secret client's callback URL> <key client's callback URL> <dir>
//
// Two clients, one per way a client authenticates at the token endpoint:
//   cpis-viewer       client_secret_basic (secret cpis-viewer-secret), Keycloak-shaped claims;
//   cpis-viewer-cis2  private_key_jwt (ES256; its private key written to <dir>/client-key.pem,
//                     kid viewer-key-1), NHS CIS2-shaped claims (scope nationalrbacaccess).
// Every authorization request and token request is logged to <dir>/requests.jsonl (what the
// browser suite checks: PKCE, state, nonce, the client's authentication), and <dir>/ready is
// written once the provider listens.
import { generateKeyPairSync } from "node:crypto";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Provider from "oidc-provider";

const [port, secretCallback, keyCallback, dir] = process.argv.slice(2);
if (!dir) {
  throw new Error("usage: node viewer_provider.mjs <port> <callback> <callback> <dir>");
}
const issuer = `http://127.0.0.1:${port}`;
const log = join(dir, "requests.jsonl");

// The provider signs ID tokens with a fresh RSA key; the key client's EC key is made here too
// (its private half for cpis, its public half registered with the client).
const signing = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const client = generateKeyPairSync("ec", { namedCurve: "P-256" });
writeFileSync(join(dir, "client-key.pem"), client.privateKey.export({ type: "pkcs8", format: "pem" }));
const clientJwk = { ...client.publicKey.export({ format: "jwk" }), kid: "viewer-key-1", alg: "ES256", use: "sig" };

// The people who may sign in, by login name: a nurse (health care) and a social worker (whom
// the viewer refuses). Each carries its claims as Keycloak and as NHS CIS2 would put them.
const PEOPLE = {
  "jane.nurse": {
    name: "Jane Nurse",
    realm_access: { roles: ["offline_access", "cpis-clinician"] },
    ods: "RJ1",
    job_role: "Staff Nurse",
    nhsid_nrbac_roles: [
      { person_roleid: "555021935107", org_code: "RJ1", role_name: "Staff Nurse", role_code: "S8000:G8000:R8001" },
      { person_roleid: "555021935108", org_code: "RJZ", role_name: "Bank Nurse", role_code: "S8000:G8000:R8008" },
    ],
    selected_roleid: "555021935107",
  },
  "sam.social": {
    name: "Sam Social",
    realm_access: { roles: ["cpis-social-worker"] },
    ods: "E09000030",
    job_role: "Social Worker",
    nhsid_nrbac_roles: [
      { person_roleid: "555021935200", org_code: "E09000030", role_name: "Social Worker", role_code: "S0080:G0450:R9999" },
    ],
    selected_roleid: "555021935200",
  },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "cpis-viewer",
      client_secret: "cpis-viewer-secret",
      token_endpoint_auth_method: "client_secret_basic",
      redirect_uris: [secretCallback],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
    {
      client_id: "cpis-viewer-cis2",
      token_endpoint_auth_method: "private_key_jwt",
      token_endpoint_auth_signing_alg: "ES256",
      jwks: { keys: [clientJwk] },
      redirect_uris: [keyCallback],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  jwks: { keys: [{ ...signing.export({ format: "jwk" }), kid: "provider-key-1", alg: "RS256", use: "sig" }] },
  cookies: { keys: ["viewer-browser-suite-cookie-key"] },
  // PKCE for every client (oidc-provider accepts only S256).
  pkce: { required: () => true },
  // The claims go into the ID token (cpis reads no userinfo).
  conformIdTokenClaims: false,
  scopes: ["openid", "profile", "nationalrbacaccess"],
  claims: {
    openid: ["sub"],
    profile: ["name", "realm_access", "ods", "job_role"],
    nationalrbacaccess: ["nhsid_nrbac_roles", "selected_roleid"],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const person = PEOPLE[id];
    if (!person) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...person }) };
  },
  ttl: { AuthorizationCode: 60, IdToken: 300, AccessToken: 300, Session: 600, Interaction: 600, Grant: 600 },
});

const record = (entry) => appendFileSync(log, JSON.stringify({ at: Date.now(), ...entry }) + "\n");
const payload = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

// The request log: what the browser brought to the authorization endpoint, and what cpis sent
// the token endpoint (the verifier, the client's authentication) and got back (the nonce).
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === "/auth" && ctx.method === "GET") {
    record({ endpoint: "authorization", status: ctx.status, params: { ...ctx.query } });
  } else if (ctx.path === "/token" && ctx.method === "POST") {
    const params = ctx.oidc?.params ?? {};
    const body = typeof ctx.body === "object" && ctx.body ? ctx.body : {};
    record({
      endpoint: "token",
      status: ctx.status,
      client_id: ctx.oidc?.client?.clientId ?? null,
      authorization_scheme: (ctx.get("authorization").split(" ")[0] || null),
      grant_type: params.grant_type ?? null,
      code_verifier: params.code_verifier ?? null,
      client_assertion_type: params.client_assertion_type ?? null,
      client_assertion: params.client_assertion ? payload(params.client_assertion) : null,
      id_token: body.id_token ? payload(body.id_token) : null,
      error: body.error ?? null,
    });
  }
});

provider.listen(Number(port), "127.0.0.1", () => {
  writeFileSync(join(dir, "ready"), issuer);
  console.log(`viewer provider: ${issuer}`);
});
