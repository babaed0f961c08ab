/** The ground floor every layer may import: errors, seeded random numbers, atomic writes. */
export { InputError } from './errors.js';
export { Rng } from './random.js';
export { writeAtomic } from './atomic.js';
