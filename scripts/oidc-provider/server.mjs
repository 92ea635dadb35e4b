// A real OpenID provider for Portcullis's end-to-end tests: oidc-provider on 127.0.0.1.
//
// Usage: node server.mjs [PORT]     (or PORT=…; 0, the default, picks a free port)
// Prints exactly one line on stdout once it is serving: `listening http://127.0.0.1:PORT`.
// Everything else, the provider's development-mode warnings included, goes to stderr.
//
// The issuer is http://127.0.0.1:PORT. One confidential client, `portcullis-test` with
// secret `portcullis-test-secret` (client_secret_basic), may use the client_credentials
// grant. Its access tokens for the resource `urn:portcullis:orders` (the default when the
// request names none) are JWTs (RFC 9068) with `aud` the resource and the requested scopes
// among `orders.read orders.write`. The signing keys are made at start-up: an RSA key
// (kid `rs256-1`, RS256, used for access tokens) and a P-256 key (kid `es256-1`, ES256), both
// in the JWKS. Set ACCESS_TOKEN_ALG=ES256 to sign access tokens with the P-256 key instead.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

// Keep stdout for the one line the test harness reads.
console.log = console.error;
console.info = console.error;
console.warn = console.error;

const RESOURCE = 'urn:portcullis:orders';
const SCOPES = 'orders.read orders.write';
const ACCESS_TOKEN_ALG = process.env.ACCESS_TOKEN_ALG === 'ES256' ? 'ES256' : 'RS256';
const ACCESS_TOKEN_TTL_SECONDS = 3600;

function jwk(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const keys = [
  jwk('rsa', { modulusLength: 2048 }, 'rs256-1', 'RS256'),
  jwk('ec', { namedCurve: 'P-256' }, 'es256-1', 'ES256'),
];

const configuration = {
  clients: [
    {
      client_id: 'portcullis-test',
      client_secret: 'portcullis-test-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', ...SCOPES.split(' ')],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: SCOPES,
          audience: RESOURCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: ACCESS_TOKEN_TTL_SECONDS,
          jwt: { sign: { alg: ACCESS_TOKEN_ALG } },
        };
      },
    },
  },
};

const portArg = process.argv[2] ?? process.env.PORT ?? '0';
const port = Number.parseInt(portArg, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`oidc-provider: not a port: ${portArg}`);
  process.exit(2);
}

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
