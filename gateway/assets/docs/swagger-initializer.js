// Shows the gateway's own /api/schema/. No validator badge: Swagger UI would ask a server
// elsewhere to check the document, and this page reaches nothing but the gateway.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/schema/",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
