import type { FastifyInstance } from 'fastify';
import { duplicateTopLevelKey } from './duplicate-keys';
import { GatewayError, invalidBody } from './errors';

/** The request body's text, kept on its parse (under a symbol, invisible to JSON). */
export const RAW_BODY: unique symbol = Symbol('raw body');

// Plain JSON.parse instead of fastify's prototype-poisoning scan: JSON.parse makes `__proto__` an own
// data property (it never sets a prototype), and bodies are only read or copied by spreading, which
// copies it as data too. The text is kept beside the parse (under a symbol, invisible to JSON) so a
// forwarded body is spliced, not re-serialized.
// Only JSON is taken (fastify would also parse text/plain into a string): anything else gets a 415.
export function registerJsonBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity')
      return done(
        new GatewayError(
          415,
          'invalid_request_error',
          'unsupported_content_encoding',
          `content-encoding "${encoding.slice(0, 40)}" is not supported; send the JSON body uncompressed`,
        ),
        undefined,
      );
    if (body === '') return done(invalidBody('the request body is empty; send a JSON object'), undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body as string);
    } catch {
      return done(invalidBody('the request body is not valid JSON'), undefined);
    }
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const twice = duplicateTopLevelKey(body as string, parsed);
      if (twice !== undefined)
        return done(
          new GatewayError(
            400,
            'invalid_request_error',
            'duplicate_key',
            `the request body has the key "${twice.slice(0, 64)}" more than once; send each key once`,
            twice.slice(0, 64),
          ),
          undefined,
        );
      (parsed as Record<symbol, unknown>)[RAW_BODY] = body;
    }
    done(null, parsed);
  });
}
