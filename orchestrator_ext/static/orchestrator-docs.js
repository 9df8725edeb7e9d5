// Starts Swagger UI on the orchestrator's OpenAPI document.
// A file, not an inline script: the docs page's Content-Security-Policy allows scripts from 'self' only.
(function () {
  "use strict";

  var root = document.getElementById("swagger-ui");

  // Cookie-authenticated requests other than GET need the _xsrf cookie echoed in a header.
  function xsrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    requestInterceptor: function (request) {
      var token = xsrfToken();
      if (token) {
        request.headers["X-XSRFToken"] = token;
      }
      return request;
    },
  });
})();
