import type { Question } from './reference-set/questions';

/**
 * Reference grading: compares a model's answer with a question's known answer. Pure code (no Node
 * built-ins, no I/O) so that workflows may import it.
 *
 * Answers are read the way a lenient human grader would: the value after the last `Answer:` line (or
 * the `answer` field of a JSON reply, or a bare one-line reply), compared after normalizing case,
 * whitespace, accents, thousands separators and unit spellings; numbers match within a relative
 * tolerance of 1e-6. JSON extraction answers are compared field by field, ignoring key order and extra
 * keys, and earn partial credit when only some fields are right.
 */

export interface Grade {
  correct: boolean;
  /** 1-5: 5 correct, 2-3 partially right JSON, 1 wrong or nothing extractable. */
  score: number;
  /** The value read from the answer (JSON text for JSON questions), or null when nothing was found. */
  extracted: string | null;
}

export type GradableQuestion = Pick<Question, 'kind' | 'reference'>;

export function gradeAnswer(question: GradableQuestion, answerText: string): Grade {
  return question.kind === 'json'
    ? gradeJson(question.reference, answerText)
    : gradeValue(question.reference, answerText);
}

// ---------------------------------------------------------------------------------------------------
// Single values (arithmetic, conversions, facts)

function gradeValue(reference: string, answerText: string): Grade {
  const extracted = extractAnswerValue(answerText);
  if (extracted === null) return { correct: false, score: 1, extracted: null };
  const correct = valuesEqual(reference, extracted);
  return { correct, score: correct ? 5 : 1, extracted };
}

const ANSWER_LINE = /^[\s>*_#-]*(?:final\s+)?answer[\s*_]*[:：]\s*(.+?)\s*$/gim;
/** A reply without an `Answer:` line is still read when it is this short: it is the answer itself. */
const MAX_BARE_ANSWER_LENGTH = 80;

export function extractAnswerValue(answerText: string): string | null {
  const lines = [...answerText.matchAll(ANSWER_LINE)];
  const last = lines.at(-1);
  if (last) return cleanValue(last[1]) || null;

  const json = extractJsonObject(answerText);
  if (json && 'answer' in json && json.answer !== null && typeof json.answer !== 'object') {
    return cleanValue(String(json.answer)) || null;
  }

  const trimmed = answerText.trim();
  const isBareAnswer = trimmed !== '' && !trimmed.includes('\n') && trimmed.length <= MAX_BARE_ANSWER_LENGTH;
  return isBareAnswer ? cleanValue(trimmed) || null : null;
}

/** Strips the decoration models put around a value: markdown emphasis, quotes, a closing period. */
function cleanValue(value: string): string {
  return value
    .replace(/[*_`]+/g, '')
    .trim()
    .replace(/^["'“”‘’]+|["'“”‘’]+$/g, '')
    .replace(/[.;!]+$/, '')
    .trim();
}

function valuesEqual(reference: string, candidate: string): boolean {
  const expected = parseQuantity(reference);
  // Only a number with no unit or a known one is a quantity; "4B" or "2024-03-05" compare as text.
  if (!expected?.knownUnit) return normalizeText(reference) === normalizeText(candidate);
  const actual = parseQuantity(candidate);
  if (!actual || !numbersClose(expected.value, actual.value)) return false;
  // A bare number answers a question that named its unit; a different unit does not.
  if (actual.unit === '') return true;
  // The reference has no unit ("12"): any unit-like word the model adds ("12 loaves") is fine.
  if (expected.unit === '') return actual.knownUnit || /^\p{L}+(?: \p{L}+)?$/u.test(actual.unit);
  return actual.unit === expected.unit;
}

export function normalizeText(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[*_`"“”‘’]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[.;!]+$/, '')
    .replace(/^the /, '');
}

interface Quantity {
  value: number;
  /** Canonical unit symbol (`m`, `°F`) when known, otherwise the normalized text after the number. */
  unit: string;
  /** True for no unit or one of the spellings below. */
  knownUnit: boolean;
}

// An optional sign and currency symbol, then digits with optional thousands separators and decimals.
const QUANTITY = /^([-+−]?)\s*\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)\s*(.*)$/;

export function parseQuantity(text: string): Quantity | null {
  // A trailing aside such as "(3.5 km)" restates the value; it is not part of the unit.
  const cleaned = cleanValue(text).replace(/\s*\([^)]*\)\s*$/, '');
  const match = QUANTITY.exec(cleaned);
  if (!match) return null;
  const [, sign, digits, rest] = match;
  const unitText = rest.toLowerCase().replace(/\s+/g, ' ').trim();
  // Text that continues like another number ("3 4", "12/5") means this is not one quantity.
  if (/^[\d.,/]/.test(unitText)) return null;
  const magnitude = Number(digits.replace(/,/g, ''));
  const value = sign === '-' || sign === '−' ? -magnitude : magnitude;
  if (unitText === '') return { value, unit: '', knownUnit: true };
  const canonical = UNIT_BY_SPELLING.get(unitText);
  return canonical
    ? { value, unit: canonical, knownUnit: true }
    : { value, unit: unitText, knownUnit: false };
}

const RELATIVE_TOLERANCE = 1e-6;

export function numbersClose(a: number, b: number): boolean {
  if (a === b) return true;
  return Math.abs(a - b) <= RELATIVE_TOLERANCE * Math.max(Math.abs(a), Math.abs(b));
}

const UNIT_SPELLINGS: Record<string, readonly string[]> = {
  mm: ['mm', 'millimeter', 'millimeters', 'millimetre', 'millimetres'],
  cm: ['cm', 'centimeter', 'centimeters', 'centimetre', 'centimetres'],
  m: ['m', 'meter', 'meters', 'metre', 'metres'],
  km: ['km', 'kilometer', 'kilometers', 'kilometre', 'kilometres'],
  in: ['in', 'inch', 'inches'],
  ft: ['ft', 'foot', 'feet'],
  yd: ['yd', 'yds', 'yard', 'yards'],
  mi: ['mi', 'mile', 'miles'],
  mg: ['mg', 'milligram', 'milligrams', 'milligramme', 'milligrammes'],
  g: ['g', 'gram', 'grams', 'gramme', 'grammes'],
  kg: ['kg', 'kgs', 'kilogram', 'kilograms', 'kilogramme', 'kilogrammes', 'kilo', 'kilos'],
  oz: ['oz', 'ounce', 'ounces'],
  lb: ['lb', 'lbs', 'pound', 'pounds'],
  mL: ['ml', 'milliliter', 'milliliters', 'millilitre', 'millilitres'],
  L: ['l', 'liter', 'liters', 'litre', 'litres'],
  qt: ['qt', 'quart', 'quarts'],
  gal: ['gal', 'gallon', 'gallons'],
  s: ['s', 'sec', 'secs', 'second', 'seconds'],
  min: ['min', 'mins', 'minute', 'minutes'],
  h: ['h', 'hr', 'hrs', 'hour', 'hours'],
  d: ['d', 'day', 'days'],
  '°C': ['°c', 'ºc', 'c', 'deg c', 'degc', 'celsius', 'degree celsius', 'degrees celsius', '° celsius'],
  '°F': [
    '°f',
    'ºf',
    'f',
    'deg f',
    'degf',
    'fahrenheit',
    'degree fahrenheit',
    'degrees fahrenheit',
    '° fahrenheit',
  ],
  $: ['$', 'dollar', 'dollars', 'usd'],
};

const UNIT_BY_SPELLING = new Map<string, string>(
  Object.entries(UNIT_SPELLINGS).flatMap(([canonical, spellings]) =>
    spellings.map((s) => [s, canonical] as const),
  ),
);

// ---------------------------------------------------------------------------------------------------
// JSON extraction answers

function gradeJson(reference: string, answerText: string): Grade {
  const expected = JSON.parse(reference) as Record<string, unknown>;
  const actual = extractJsonObject(answerText);
  if (!actual) return { correct: false, score: 1, extracted: null };
  const keys = Object.keys(expected);
  const right = keys.filter((key) => key in actual && jsonValuesEqual(expected[key], actual[key])).length;
  const fraction = keys.length === 0 ? 1 : right / keys.length;
  const correct = fraction === 1;
  return {
    correct,
    score: correct ? 5 : fraction >= 0.5 ? 3 : fraction > 0 ? 2 : 1,
    extracted: JSON.stringify(actual),
  };
}

/** The JSON object in a reply: the whole text, a fenced code block, or the outermost braces. */
export function extractJsonObject(text: string): Record<string, unknown> | null {
  const candidates = [text.trim()];
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fenced) candidates.push(fenced[1].trim());
  const first = text.indexOf('{');
  const last = text.lastIndexOf('}');
  if (first !== -1 && last > first) candidates.push(text.slice(first, last + 1));
  for (const candidate of candidates) {
    if (!candidate.startsWith('{')) continue;
    try {
      const parsed: unknown = JSON.parse(candidate);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        return parsed as Record<string, unknown>;
      }
    } catch {
      // Not this candidate; try the next one.
    }
  }
  return null;
}

function jsonValuesEqual(expected: unknown, actual: unknown): boolean {
  if (typeof expected === 'number') {
    const value =
      typeof actual === 'number'
        ? actual
        : typeof actual === 'string'
          ? parseQuantity(actual)?.value
          : undefined;
    return value !== undefined && numbersClose(expected, value);
  }
  if (typeof expected === 'boolean') {
    if (typeof actual === 'boolean') return actual === expected;
    return typeof actual === 'string' && normalizeText(actual) === String(expected);
  }
  if (typeof expected === 'string') {
    if (typeof actual !== 'string' && typeof actual !== 'number') return false;
    return valuesEqual(expected, String(actual));
  }
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((item, index) => jsonValuesEqual(item, actual[index]))
    );
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const record = actual as Record<string, unknown>;
    return Object.entries(expected).every(
      ([key, value]) => key in record && jsonValuesEqual(value, record[key]),
    );
  }
  return actual === expected;
}
