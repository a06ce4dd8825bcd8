/**
 * Writes `src/decision/scoring/reference-set/questions.json`, the simulator's question set with reference answers.
 *
 *   npx tsx scripts/generate-questions.ts [--check]
 *
 * Reproducible: a fixed seed drives every choice, so running it twice yields the same bytes (`--check`
 * verifies the committed file is up to date). Before writing, every item is graded with the reference
 * grader: its reference must grade correct and each wrong answer must grade wrong, so the set and the
 * grader can never drift apart silently.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gradeAnswer } from '../src/decision/scoring/reference';
import type { Question, QuestionKind } from '../src/decision/scoring/reference-set/questions';
import { createRandom, type Random } from '../src/tooling/simulator/random';

const SEED = 20240611;
const OUTPUT = fileURLToPath(
  new URL('../src/decision/scoring/reference-set/questions.json', import.meta.url),
);
const ARITHMETIC_COUNT = 100;
const CONVERSION_COUNT = 80;
const JSON_COUNT = 80;
const WRONG_PER_QUESTION = 3;

type Draft = Omit<Question, 'id' | 'kind'>;

// ---------------------------------------------------------------------------------------------------
// Arithmetic word problems: templates with random numbers, wrong answers from typical slips.

const NAMES = [
  'Maya',
  'Tom',
  'Aisha',
  'Lukas',
  'Priya',
  'Diego',
  'Sofia',
  'Kenji',
  'Amara',
  'Noah',
  'Elena',
  'Omar',
];

type ArithmeticTemplate = (r: Random) => { prompt: string; answer: number; slips: number[] };

const ARITHMETIC_TEMPLATES: ArithmeticTemplate[] = [
  (r) => {
    const perDay = r.int(12, 60);
    const days = r.int(3, 9);
    const sold = r.int(10, perDay * days - 5);
    return {
      prompt: `A bakery bakes ${perDay} loaves every day for ${days} days and sells ${sold} loaves in total. How many loaves are left?`,
      answer: perDay * days - sold,
      slips: [
        perDay * days + sold,
        perDay + days - sold,
        perDay * (days - 1) - sold,
        perDay * days - sold + 10,
      ],
    };
  },
  (r) => {
    const speed = r.int(40, 120);
    const hours = r.int(2, 8);
    return {
      prompt: `A train travels at ${speed} km per hour for ${hours} hours. How many kilometers does it travel?`,
      answer: speed * hours,
      slips: [speed + hours, speed * (hours + 1), speed * (hours - 1), Math.round((speed * hours) / 2)],
    };
  },
  (r) => {
    const name = r.pick(NAMES);
    const count = r.int(2, 9);
    const price = r.int(2, 9);
    const bill = r.pick([50, 100].filter((b) => b > count * price));
    return {
      prompt: `${name} buys ${count} notebooks at ${price} dollars each and pays with a ${bill}-dollar bill. How much change does ${name} get, in dollars?`,
      answer: bill - count * price,
      slips: [count * price, bill - count - price, bill - (count + 1) * price, bill - count * price + price],
    };
  },
  (r) => {
    const boxes = r.int(6, 40);
    const perBox = r.int(6, 24);
    const damaged = r.int(3, 30);
    return {
      prompt: `A warehouse has ${boxes} boxes with ${perBox} items in each box. ${damaged} items are damaged. How many undamaged items are there?`,
      answer: boxes * perBox - damaged,
      slips: [
        boxes * perBox + damaged,
        boxes * perBox,
        boxes * (perBox - damaged),
        boxes * perBox - damaged - perBox,
      ],
    };
  },
  (r) => {
    const teamSize = r.int(3, 7);
    const students = teamSize * r.int(4, 9) + r.int(1, teamSize - 1);
    const full = Math.floor(students / teamSize);
    return {
      prompt: `A class of ${students} students is split into teams of ${teamSize}. How many full teams can be formed?`,
      answer: full,
      slips: [full + 1, students % teamSize, full - 1, students - teamSize],
    };
  },
  (r) => {
    const rate = r.int(4, 25);
    const minutes = r.int(5, 40);
    return {
      prompt: `An empty tank holds ${rate * minutes} liters and is filled at ${rate} liters per minute. How many minutes does it take to fill the tank?`,
      answer: minutes,
      slips: [minutes + 1, minutes * 2, rate * minutes - rate, minutes + rate],
    };
  },
  (r) => {
    const name = r.pick(NAMES);
    const start = r.int(20, 90);
    const given = r.int(5, 19);
    const packs = r.int(2, 6);
    const perPack = r.int(5, 12);
    return {
      prompt: `${name} has ${start} marbles, gives ${given} to a friend, and then buys ${packs} packs of ${perPack} marbles. How many marbles does ${name} have now?`,
      answer: start - given + packs * perPack,
      slips: [
        start + given + packs * perPack,
        start - given + packs + perPack,
        start + packs * perPack,
        start - given + perPack,
      ],
    };
  },
  (r) => {
    const monday = r.int(10, 60);
    const fewer = r.int(3, monday - 1);
    return {
      prompt: `A shop sells ${monday} shirts on Monday, twice as many on Tuesday, and ${fewer} fewer than Tuesday on Wednesday. How many shirts did it sell over the three days?`,
      answer: monday + 2 * monday + (2 * monday - fewer),
      slips: [
        monday + 2 * monday + (monday - fewer),
        3 * monday - fewer,
        5 * monday + fewer,
        2 * monday + (2 * monday - fewer),
      ],
    };
  },
  (r) => {
    const price = 20 * r.int(2, 15);
    const discount = r.pick([10, 15, 20, 25, 30, 40, 50]);
    return {
      prompt: `A jacket costs ${price} dollars and is discounted by ${discount} percent. What is the sale price in dollars?`,
      answer: (price * (100 - discount)) / 100,
      slips: [
        (price * discount) / 100,
        price - discount,
        (price * (100 + discount)) / 100,
        price - discount * 2,
      ],
    };
  },
  (r) => {
    const count = r.int(4, 12);
    const mean = r.int(11, 95);
    return {
      prompt: `The average of ${count} numbers is ${mean}. What is their sum?`,
      answer: count * mean,
      slips: [count + mean, (count - 1) * mean, count * mean + count, Math.round(mean / count)],
    };
  },
];

function arithmeticQuestion(r: Random): Draft {
  const { prompt, answer, slips } = r.pick(ARITHMETIC_TEMPLATES)(r);
  // Counts and prices in these problems are never negative, so a slip to zero or below would not be plausible.
  const plausible = slips.filter((slip) => slip > 0).map(formatNumber);
  return { prompt, reference: formatNumber(answer), wrong: pickWrong(r, formatNumber(answer), plausible) };
}

// ---------------------------------------------------------------------------------------------------
// Unit conversions: the factor is exact or stated in the prompt; wrong answers invert or shift it.

interface Conversion {
  from: string;
  to: string;
  symbol: string;
  convert: (x: number) => number;
  /** Typical slips: inverted factor, a factor off by ten, a forgotten offset. */
  slips: (x: number) => number[];
  values: () => number[];
  /** Extra instruction when the factor is not exact. */
  note?: string;
  decimals?: number;
}

const multiply = (
  factor: number,
  from: string,
  to: string,
  symbol: string,
  values: number[],
): Conversion => ({
  from,
  to,
  symbol,
  convert: (x) => x * factor,
  slips: (x) => [x / factor, x * factor * 10, x * (factor / 10), x + factor],
  values: () => values,
});

const CONVERSIONS: Conversion[] = [
  multiply(1000, 'kilometers', 'meters', 'm', [1.5, 2, 3.25, 4.8, 7, 12.5, 0.75]),
  multiply(100, 'meters', 'centimeters', 'cm', [2.5, 3, 4.75, 8, 12, 0.6]),
  multiply(10, 'centimeters', 'millimeters', 'mm', [3.5, 12, 27, 45.5, 8.2]),
  multiply(1000, 'kilograms', 'grams', 'g', [1.2, 2.5, 3, 4.25, 6.4, 0.35]),
  multiply(1000, 'liters', 'milliliters', 'mL', [0.5, 1.75, 2, 3.3, 5.5]),
  multiply(60, 'hours', 'minutes', 'min', [1.5, 2, 2.25, 3.5, 4, 6.75]),
  multiply(60, 'minutes', 'seconds', 's', [2.5, 3, 4.5, 7, 12, 15.25]),
  multiply(24, 'days', 'hours', 'h', [2, 3.5, 5, 7, 10]),
  multiply(12, 'feet', 'inches', 'in', [3, 4.5, 6, 8, 11.25]),
  multiply(3, 'yards', 'feet', 'ft', [4, 7.5, 12, 25, 40]),
  multiply(5280, 'miles', 'feet', 'ft', [2, 3, 0.5, 1.25, 4]),
  multiply(16, 'pounds', 'ounces', 'oz', [2, 3.5, 5, 7.25, 12]),
  multiply(4, 'gallons', 'quarts', 'qt', [2, 3.5, 6, 9, 12.5]),
  multiply(2.54, 'inches', 'centimeters', 'cm', [4, 10, 12, 25, 36]),
  {
    from: 'meters',
    to: 'kilometers',
    symbol: 'km',
    convert: (x) => x / 1000,
    slips: (x) => [x * 1000, x / 100, x / 10000],
    values: () => [2500, 750, 4200, 12800, 300],
  },
  {
    from: 'grams',
    to: 'kilograms',
    symbol: 'kg',
    convert: (x) => x / 1000,
    slips: (x) => [x * 1000, x / 100, x / 10000],
    values: () => [1500, 250, 3750, 800, 12000],
  },
  {
    from: 'degrees Celsius',
    to: 'degrees Fahrenheit',
    symbol: '°F',
    convert: (x) => (x * 9) / 5 + 32,
    // The last slip is the popular mental shortcut "double it and add 30".
    slips: (x) => [(x * 9) / 5, ((x - 32) * 5) / 9, (x * 5) / 9 + 32, x + 32, x * 2 + 30],
    values: () => [0, 10, 25, 30, 37, 100, -10, 15],
  },
  {
    from: 'kilograms',
    to: 'pounds',
    symbol: 'lb',
    convert: (x) => x * 2.20462,
    slips: (x) => [x / 2.20462, x * 2.0462, x * 2.2],
    values: () => [3, 5, 12, 45, 70],
    note: ' Use 1 kg = 2.20462 lb and round to two decimal places.',
    decimals: 2,
  },
  {
    from: 'miles',
    to: 'kilometers',
    symbol: 'km',
    convert: (x) => x * 1.609344,
    slips: (x) => [x / 1.609344, x * 1.6, x * 1.906344],
    values: () => [3, 10, 26.2, 50, 7],
    note: ' Use 1 mile = 1.609344 km and round to two decimal places.',
    decimals: 2,
  },
];

const CONVERSION_PHRASINGS = [
  (x: string, c: Conversion) => `Convert ${x} ${c.from} to ${c.to}.`,
  (x: string, c: Conversion) => `How many ${c.to} are there in ${x} ${c.from}?`,
  (x: string, c: Conversion) => `Express ${x} ${c.from} in ${c.to}.`,
];

function conversionQuestion(r: Random): Draft {
  const conversion = r.pick(CONVERSIONS);
  const value = r.pick(conversion.values());
  const round = (x: number) =>
    conversion.decimals === undefined ? x : Number(x.toFixed(conversion.decimals));
  const quantity = (x: number) => `${formatNumber(round(x))} ${conversion.symbol}`;
  const prompt = r.pick(CONVERSION_PHRASINGS)(formatNumber(value), conversion) + (conversion.note ?? '');
  const reference = quantity(conversion.convert(value));
  return { prompt, reference, wrong: pickWrong(r, reference, conversion.slips(value).map(quantity)) };
}

// ---------------------------------------------------------------------------------------------------
// Facts: a curated list of answers that do not change (no populations, no records, no office holders).

const CAPITALS: [country: string, capital: string, likelyMistakes?: string[]][] = [
  ['France', 'Paris', ['Lyon', 'Marseille']],
  ['Germany', 'Berlin', ['Munich', 'Bonn', 'Frankfurt']],
  ['Italy', 'Rome', ['Milan', 'Naples']],
  ['Spain', 'Madrid', ['Barcelona', 'Seville']],
  ['Portugal', 'Lisbon', ['Porto']],
  ['Japan', 'Tokyo', ['Kyoto', 'Osaka']],
  ['Canada', 'Ottawa', ['Toronto', 'Montreal', 'Vancouver']],
  ['Australia', 'Canberra', ['Sydney', 'Melbourne']],
  ['Brazil', 'Brasília', ['Rio de Janeiro', 'São Paulo']],
  ['Egypt', 'Cairo', ['Alexandria']],
  ['Kenya', 'Nairobi', ['Mombasa']],
  ['India', 'New Delhi', ['Mumbai', 'Kolkata']],
  ['China', 'Beijing', ['Shanghai', 'Hong Kong']],
  ['Russia', 'Moscow', ['Saint Petersburg']],
  ['Mexico', 'Mexico City', ['Guadalajara', 'Cancún']],
  ['Argentina', 'Buenos Aires', ['Córdoba']],
  ['Norway', 'Oslo', ['Bergen']],
  ['Sweden', 'Stockholm', ['Gothenburg']],
  ['Finland', 'Helsinki', ['Turku']],
  ['Denmark', 'Copenhagen', ['Aarhus']],
  ['Poland', 'Warsaw', ['Kraków']],
  ['Austria', 'Vienna', ['Salzburg']],
  ['Greece', 'Athens', ['Thessaloniki']],
  ['Turkey', 'Ankara', ['Istanbul', 'Izmir']],
  ['Ireland', 'Dublin', ['Cork']],
  ['the Netherlands', 'Amsterdam', ['Rotterdam', 'The Hague']],
  ['Belgium', 'Brussels', ['Antwerp']],
  ['Switzerland', 'Bern', ['Zurich', 'Geneva']],
  ['Hungary', 'Budapest', ['Debrecen']],
  ['Peru', 'Lima', ['Cusco']],
  ['Chile', 'Santiago', ['Valparaíso']],
  ['Colombia', 'Bogotá', ['Medellín']],
  ['South Korea', 'Seoul', ['Busan']],
  ['Thailand', 'Bangkok', ['Chiang Mai']],
  ['Vietnam', 'Hanoi', ['Ho Chi Minh City']],
  ['New Zealand', 'Wellington', ['Auckland', 'Christchurch']],
  ['Nigeria', 'Abuja', ['Lagos']],
  ['Morocco', 'Rabat', ['Casablanca', 'Marrakesh']],
  ['Iceland', 'Reykjavík', ['Akureyri']],
  ['Cuba', 'Havana', ['Santiago de Cuba']],
];

const ELEMENTS: [name: string, symbol: string, atomicNumber: number][] = [
  ['hydrogen', 'H', 1],
  ['helium', 'He', 2],
  ['carbon', 'C', 6],
  ['nitrogen', 'N', 7],
  ['oxygen', 'O', 8],
  ['neon', 'Ne', 10],
  ['sodium', 'Na', 11],
  ['magnesium', 'Mg', 12],
  ['aluminium', 'Al', 13],
  ['silicon', 'Si', 14],
  ['phosphorus', 'P', 15],
  ['sulfur', 'S', 16],
  ['chlorine', 'Cl', 17],
  ['argon', 'Ar', 18],
  ['potassium', 'K', 19],
  ['calcium', 'Ca', 20],
  ['iron', 'Fe', 26],
  ['cobalt', 'Co', 27],
  ['nickel', 'Ni', 28],
  ['copper', 'Cu', 29],
  ['zinc', 'Zn', 30],
  ['silver', 'Ag', 47],
  ['tin', 'Sn', 50],
  ['iodine', 'I', 53],
  ['tungsten', 'W', 74],
  ['platinum', 'Pt', 78],
  ['gold', 'Au', 79],
  ['mercury', 'Hg', 80],
  ['lead', 'Pb', 82],
  ['uranium', 'U', 92],
];

const PLANETS = ['Mercury', 'Venus', 'Earth', 'Mars', 'Jupiter', 'Saturn', 'Uranus', 'Neptune'];
const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth'];

const OTHER_FACTS: [prompt: string, reference: string, wrong: string[]][] = [
  ['Which planet is known as the Red Planet?', 'Mars', ['Jupiter', 'Venus', 'Mercury']],
  ['What is the largest planet in the Solar System?', 'Jupiter', ['Saturn', 'Neptune', 'Earth']],
  ['Which planet has the most prominent ring system?', 'Saturn', ['Jupiter', 'Uranus', 'Neptune']],
  ['What is the hottest planet in the Solar System?', 'Venus', ['Mercury', 'Mars', 'Jupiter']],
  ['How many planets are in the Solar System?', '8', ['9', '7', '10']],
  ['How many sides does a pentagon have?', '5', ['6', '4', '8']],
  ['How many sides does a hexagon have?', '6', ['5', '8', '7']],
  ['How many sides does a heptagon have?', '7', ['6', '8', '9']],
  ['How many sides does an octagon have?', '8', ['6', '10', '7']],
  ['How many sides does a decagon have?', '10', ['12', '8', '9']],
  ['How many days are in a leap year?', '366', ['365', '364', '367']],
  ['How many degrees are in a right angle?', '90', ['180', '45', '360']],
  ['What is the chemical formula of water?', 'H2O', ['H2O2', 'HO2', 'OH']],
  ['What is the chemical formula of carbon dioxide?', 'CO2', ['CO', 'C2O', 'O2C2']],
  [
    'At sea level, at what temperature does water boil, in degrees Celsius?',
    '100 °C',
    ['90 °C', '212 °C', '110 °C'],
  ],
  [
    'At sea level, at what temperature does water freeze, in degrees Fahrenheit?',
    '32 °F',
    ['0 °F', '212 °F', '30 °F'],
  ],
];

function factQuestions(r: Random): Draft[] {
  const capitals = CAPITALS.map(([country, capital, mistakes = []]): Draft => {
    const others = r.shuffle(CAPITALS.map((entry) => entry[1]).filter((other) => other !== capital));
    return {
      prompt: `What is the capital of ${country}?`,
      reference: capital,
      wrong: pickWrong(r, capital, [...mistakes, ...others], false),
    };
  });
  const symbols = ELEMENTS.map(([name, symbol]): Draft => {
    // Plausible slips: the first letter, the first two letters, first and third letters.
    const title = name[0].toUpperCase() + name.slice(1);
    const guesses = [title.slice(0, 2), title[0], title[0] + name[2], title[0] + name.at(-1)];
    return {
      prompt: `What is the chemical symbol for ${name}?`,
      reference: symbol,
      wrong: pickWrong(r, symbol, guesses),
    };
  });
  const atomicNumbers = r
    .shuffle(ELEMENTS)
    .slice(0, 15)
    .map(([name, , number]): Draft => ({
      prompt: `What is the atomic number of ${name}?`,
      reference: String(number),
      wrong: pickWrong(r, String(number), [number + 1, number - 1, number + 2, number * 2].map(String)),
    }));
  const planetOrder = PLANETS.map((planet, index): Draft => ({
    prompt: `Which planet is ${ORDINALS[index]} from the Sun?`,
    reference: planet,
    wrong: pickWrong(
      r,
      planet,
      [PLANETS[index + 1], PLANETS[index - 1], ...r.shuffle(PLANETS)].filter(Boolean),
      false,
    ),
  }));
  const others = OTHER_FACTS.map(([prompt, reference, wrong]): Draft => ({ prompt, reference, wrong }));
  return [...capitals, ...symbols, ...atomicNumbers, ...planetOrder, ...others];
}

// ---------------------------------------------------------------------------------------------------
// JSON extraction: a sentence with facts in it; the answer is an object of named fields. Wrong answers
// get one field wrong (partial credit), several fields wrong, or fields swapped.

const FIRST_NAMES = [
  'Maria',
  'James',
  'Aiko',
  'Rahul',
  'Fatima',
  'Lars',
  'Chloé',
  'Mateo',
  'Grace',
  'Yusuf',
  'Ingrid',
  'Kwame',
];
const LAST_NAMES = [
  'Lopez',
  'Okafor',
  'Tanaka',
  'Sharma',
  'Haddad',
  'Nilsson',
  'Moreau',
  'Rossi',
  'Kim',
  'Novak',
  'Silva',
  'Byrne',
];
const CITIES = [
  'Lisbon',
  'Toronto',
  'Osaka',
  'Nairobi',
  'Oslo',
  'Lyon',
  'Denver',
  'Porto',
  'Seoul',
  'Dublin',
  'Krakow',
  'Austin',
];
const PRODUCTS = [
  'desk lamp',
  'office chair',
  'USB cable',
  'water bottle',
  'notebook',
  'keyboard',
  'backpack',
  'headphones',
];
const AIRPORTS = ['LHR', 'JFK', 'CDG', 'NRT', 'SFO', 'AMS', 'FRA', 'SYD', 'DXB', 'MAD'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const EVENTS = [
  'quarterly review',
  'design workshop',
  'budget meeting',
  'product launch',
  'team offsite',
  'security audit',
];

interface Extraction {
  instruction: string;
  sentence: string;
  fields: Record<string, string | number | boolean>;
  /** A wrong value per field, and optionally a whole plausibly-wrong object. */
  mistakes: Record<string, string | number | boolean>;
  swapped?: Record<string, string | number | boolean>;
}

const EXTRACTION_TEMPLATES: ((r: Random) => Extraction)[] = [
  (r) => {
    const name = `${r.pick(FIRST_NAMES)} ${r.pick(LAST_NAMES)}`;
    const age = r.int(19, 78);
    const city = r.pick(CITIES);
    const sentence = r.pick([
      `${name}, aged ${age}, lives in ${city}.`,
      `Last year ${name} (${age}) moved to ${city} for a new job.`,
      `${name} is ${age} years old and works in ${city}.`,
    ]);
    return {
      instruction:
        'the person\'s name, age and city as a JSON object with the keys "name" (string), "age" (number) and "city" (string)',
      sentence,
      fields: { name, age, city },
      mistakes: { name: name.split(' ')[0], age: age + 1, city: r.pick(CITIES.filter((c) => c !== city)) },
    };
  },
  (r) => {
    const quantity = r.int(2, 250);
    const product = r.pick(PRODUCTS);
    const price = r.int(3, 180) + r.pick([0, 0.5, 0.99]);
    return {
      instruction:
        'the order as a JSON object with the keys "product" (string), "quantity" (number) and "unit_price" (number, in dollars)',
      sentence: r.pick([
        `Order note: ${quantity} units of ${product} at $${price.toFixed(2)} each were shipped on Tuesday.`,
        `We received ${quantity} of the ${product} model, billed at $${price.toFixed(2)} per unit.`,
      ]),
      fields: { product, quantity, unit_price: price },
      mistakes: {
        product: r.pick(PRODUCTS.filter((p) => p !== product)),
        quantity: quantity * 10,
        unit_price: Number((price * quantity).toFixed(2)),
      },
    };
  },
  (r) => {
    const event = r.pick(EVENTS);
    const year = r.int(2019, 2027);
    const month = r.int(1, 12);
    // Days up to 12, so a day/month swap is a valid (and wrong) date.
    const day = r.pick([...Array(12).keys()].map((d) => d + 1).filter((d) => d !== month));
    const room = `${r.int(1, 9)}${r.pick(['A', 'B', 'C', 'D'])}`;
    const iso = (m: number, d: number) =>
      `${year}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
    return {
      instruction:
        'the event as a JSON object with the keys "event" (string), "date" (string, YYYY-MM-DD) and "room" (string)',
      sentence: `The ${event} is scheduled for ${MONTHS[month - 1]} ${day}, ${year} in room ${room}.`,
      fields: { event, date: iso(month, day), room },
      mistakes: {
        event: r.pick(EVENTS.filter((e) => e !== event)),
        date: iso(day, month),
        room: room.split('').reverse().join(''),
      },
    };
  },
  (r) => {
    const code = `${r.pick(['BA', 'LH', 'AF', 'JL', 'UA', 'KL'])}${r.int(100, 999)}`;
    const [origin, destination] = r.shuffle(AIRPORTS);
    const hour = String(r.int(5, 22)).padStart(2, '0');
    return {
      instruction:
        'the flight as a JSON object with the keys "flight" (string), "origin" (string, airport code) and "destination" (string, airport code)',
      sentence: `Flight ${code} from ${origin} to ${destination} departs at ${hour}:${r.pick(['05', '20', '40', '55'])} local time.`,
      fields: { flight: code, origin, destination },
      mistakes: {
        flight: code.slice(2),
        origin: r.pick(AIRPORTS.filter((a) => a !== origin && a !== destination)),
        destination: origin,
      },
      swapped: { flight: code, origin: destination, destination: origin },
    };
  },
  (r) => {
    const product = r.pick(PRODUCTS);
    const rating = r.int(1, 5);
    const recommend = rating >= 4;
    return {
      instruction:
        'the review as a JSON object with the keys "product" (string), "rating" (number, out of 5) and "recommend" (boolean)',
      sentence: `I gave the ${product} ${rating} out of 5 stars, and I ${recommend ? 'would' : 'would not'} recommend it to a friend.`,
      fields: { product, rating, recommend },
      mistakes: {
        product: r.pick(PRODUCTS.filter((p) => p !== product)),
        rating: rating === 5 ? 4 : rating + 1,
        recommend: !recommend,
      },
    };
  },
];

function jsonQuestion(r: Random): Draft {
  const extraction = r.pick(EXTRACTION_TEMPLATES)(r);
  const keys = Object.keys(extraction.fields);
  const withMistakes = (wrongKeys: string[]) =>
    JSON.stringify(
      Object.fromEntries(
        keys.map((k) => [k, wrongKeys.includes(k) ? extraction.mistakes[k] : extraction.fields[k]]),
      ),
    );
  const [first, second] = r.shuffle(keys);
  const candidates = [withMistakes([first]), withMistakes([first, second]), withMistakes(keys)];
  if (extraction.swapped) candidates.unshift(JSON.stringify(extraction.swapped));
  const reference = JSON.stringify(extraction.fields);
  return {
    prompt: `Extract ${extraction.instruction} from the sentence below. Reply with the JSON object only.\n\nSentence: ${extraction.sentence}`,
    reference,
    wrong: pickWrong(r, reference, candidates, false),
  };
}

// ---------------------------------------------------------------------------------------------------

function formatNumber(value: number): string {
  // Rounding to 6 decimals removes binary noise such as 0.30000000000000004.
  return String(Math.round(value * 1e6) / 1e6);
}

/** Distinct candidates that differ from the reference, optionally shuffled, first few kept. */
function pickWrong(r: Random, reference: string, candidates: string[], shuffle = true): string[] {
  const distinct = [...new Set(candidates)].filter((c) => c !== reference);
  return (shuffle ? r.shuffle(distinct) : distinct).slice(0, WRONG_PER_QUESTION);
}

function generate(): Question[] {
  const r = createRandom(SEED);
  const byKind: [QuestionKind, Draft[]][] = [
    ['arithmetic', unique(r, ARITHMETIC_COUNT, arithmeticQuestion)],
    ['conversion', unique(r, CONVERSION_COUNT, conversionQuestion)],
    ['fact', factQuestions(r)],
    ['json', unique(r, JSON_COUNT, jsonQuestion)],
  ];
  return byKind.flatMap(([kind, drafts]) =>
    drafts.map((draft, index) => ({ id: `${kind}-${String(index + 1).padStart(3, '0')}`, kind, ...draft })),
  );
}

/** `count` drafts with distinct prompts (the simulator recognizes a question by its prompt). */
function unique(r: Random, count: number, make: (r: Random) => Draft): Draft[] {
  const drafts = new Map<string, Draft>();
  for (let attempts = 0; drafts.size < count; attempts++) {
    if (attempts > count * 50) throw new Error(`could not generate ${count} distinct prompts`);
    const draft = make(r);
    if (!drafts.has(draft.prompt)) drafts.set(draft.prompt, draft);
  }
  return [...drafts.values()];
}

/** The set must agree with the grader: references grade correct, wrong answers grade wrong. */
function verify(questions: Question[]): void {
  const prompts = new Set<string>();
  const render = (q: Question, value: string) => (q.kind === 'json' ? value : `Answer: ${value}`);
  for (const q of questions) {
    if (prompts.has(q.prompt)) throw new Error(`${q.id}: duplicate prompt`);
    prompts.add(q.prompt);
    if (q.wrong.length < 2) throw new Error(`${q.id}: only ${q.wrong.length} wrong answers`);
    if (!gradeAnswer(q, render(q, q.reference)).correct)
      throw new Error(`${q.id}: reference does not grade correct`);
    for (const wrong of q.wrong) {
      if (gradeAnswer(q, render(q, wrong)).correct)
        throw new Error(`${q.id}: wrong answer ${wrong} grades correct`);
    }
  }
}

function serialize(questions: Question[]): string {
  // One question per line: small diffs, and still valid JSON.
  return `[\n${questions.map((q) => JSON.stringify(q)).join(',\n')}\n]\n`;
}

const questions = generate();
verify(questions);
const text = serialize(questions);
if (process.argv.includes('--check')) {
  const current = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, 'utf8') : '';
  if (current !== text) {
    console.error(`${OUTPUT} is out of date: run npx tsx scripts/generate-questions.ts`);
    process.exit(1);
  }
  console.log(`${OUTPUT} is up to date (${questions.length} questions)`);
} else {
  fs.writeFileSync(OUTPUT, text);
  const counts = new Map<string, number>();
  for (const q of questions) counts.set(q.kind, (counts.get(q.kind) ?? 0) + 1);
  const summary = [...counts].map(([kind, count]) => `${kind} ${count}`).join(', ');
  console.log(`wrote ${questions.length} questions (${summary}; ${text.length} bytes) to ${OUTPUT}`);
}
