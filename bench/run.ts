// Placeholder: `npm run bench` (issues 2 and 4).
console.log('no benchmarks yet');
