'use strict'
// The native binding, loaded through the generated platform loader (../index.js). When no
// binary fits this machine the loader throws "Cannot find native binding. npm has a bug ...",
// which names neither the platform nor the package it looked for; this rethrows that as an
// error that does, and says how to build from source (the loader's error is kept as `cause`).

let binding
try {
  binding = require('../index.js')
} catch (err) {
  throw require('./native-error.js').nativeLoadError(err)
}

module.exports = binding
