/** The ground floor every layer may import: errors, seeded random numbers, atomic writes, medians. */
export { InputError } from './errors.js';
export { Rng } from './random.js';
export { writeAtomic } from './atomic.js';
export { median } from './stats.js';
