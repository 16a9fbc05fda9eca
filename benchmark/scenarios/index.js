'use strict'
// The scenarios that live in their own modules, in the order they run (after drain, live,
// max, send and memory, which are in benchmark/run.js). Each exports { id, title, run(cfg),
// tables(result) → { sections, summary, ratios, targets } }.

module.exports = [require('./rtt.js'), require('./create.js'), require('./sockets.js'), require('./reqresp.js')]
