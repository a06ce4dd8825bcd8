/**
 * Child of test/unit/api-keys-memory.test.ts (run with --expose-gc): presents keys to a key store the way
 * the gateway does, drops every reference of its own, collects garbage, and prints how many presented keys
 * a heap snapshot still holds in plain text.
 */
import v8 from 'node:v8';
import crypto from 'node:crypto';
import { createApiKeyStore, type ApiKeyStore } from '../../src/data-plane/gateway/api-keys';

const MARK = 'sk-heapmark-';
const gc = (globalThis as { gc?: () => void }).gc!;

function present(store: ApiKeyStore, valid: string[]): number {
  let found = 0;
  // Valid keys, as fresh strings (a request's header is a new string each time), and invalid ones.
  for (const k of valid) if (store.lookup(Buffer.from(k).toString())) found++;
  for (let i = 0; i < 500; i++) store.lookup(`${MARK}${crypto.randomBytes(16).toString('hex')}`);
  return found;
}

function setUp(): { store: ApiKeyStore; found: number } {
  const valid = Array.from({ length: 5 }, () => `${MARK}${crypto.randomBytes(16).toString('hex')}`);
  const store = createApiKeyStore({ flat: valid });
  return { store, found: present(store, valid) };
}

const { store, found } = setUp();
gc();
gc();
let text = '';
for await (const chunk of v8.getHeapSnapshot()) text += chunk;
const held = new Set(text.match(new RegExp(`${MARK}[0-9a-f]{32}`, 'g')) ?? []);
console.log(JSON.stringify({ found, held: held.size, keys: store.size }));
