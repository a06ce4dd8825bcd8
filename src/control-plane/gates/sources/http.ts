import { failureKind } from '../named-config';
import { excerpt } from './kind';

/** A GET to a configured source: the JSON answer, or why not (the URL never appears in the reason). */
export async function getJson(
  name: string,
  url: URL,
  headers: Record<string, string> | undefined,
  timeoutMs: number,
): Promise<{ json: unknown } | { error: string }> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      headers: { accept: 'application/json', ...headers },
      // A redirect would take the configured headers (a token) to a host nobody configured.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    return { error: `metric source '${name}' unreachable (${failureKind(err)})` };
  }
  if (!res.ok) return { error: `metric source '${name}' answered ${res.status}: ${excerpt(text)}` };
  try {
    return { json: JSON.parse(text) };
  } catch {
    return { error: `metric source '${name}' answered something that is not JSON: ${excerpt(text)}` };
  }
}
