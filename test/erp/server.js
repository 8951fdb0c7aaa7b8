// Bootstraps the test ERP: the standard CAP server, bound to 127.0.0.1 only,
// with the server-driven page size taken from ERP_PAGE_SIZE.
'use strict'

const cds = require('@sap/cds')

const HOST = '127.0.0.1'
const port = Number(process.env.PORT || 4004)

const pageSize = process.env.ERP_PAGE_SIZE
if (pageSize !== undefined && pageSize !== '') {
  if (!/^[1-9][0-9]*$/.test(pageSize)) {
    throw new Error(`invalid ERP_PAGE_SIZE '${pageSize}': expected a positive integer`)
  }
  // The default applies when a request has no $top, and max caps a larger $top.
  cds.env.query.limit = { default: Number(pageSize), max: Number(pageSize) }
}

// The OData V2 adapter forwards each request to the V4 service over HTTP.
// Point it at the address the server binds, because "localhost" may resolve to ::1.
cds.env.cov2ap = { ...cds.env.cov2ap, target: `http://${HOST}:${port}` }

// cds.server calls app.listen(port), which binds every interface.
cds.on('bootstrap', (app) => {
  const listen = app.listen
  app.listen = (listenPort, ...rest) => listen.call(app, listenPort, HOST, ...rest)
})

module.exports = cds.server
