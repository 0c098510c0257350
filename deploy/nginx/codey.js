// njs for deploy/nginx/codey.conf: model affinity. Reads the model a request
// names from its JSON body ("model", or "name" as older Ollama clients send
// in /api/show) into $codey_model, then hands the request to the proxying
// location, where a map turns the model into the upstream group of servers
// that keep it loaded (codey/upstreams.conf). Nothing here decides whether a
// request is valid: a body that is not JSON, or names no model, goes to the
// group of every server, and codey answers it (400, 404) itself.
function route(r) {
  let model = '';
  const body = r.requestText;  // in memory: client_body_buffer_size = client_max_body_size
  if (body) {
    try {
      const j = JSON.parse(body);
      if (j && typeof j === 'object') {
        if (typeof j.model === 'string') model = j.model;
        else if (typeof j.name === 'string') model = j.name;
      }
    } catch (e) {
      // Not JSON (or compressed): no affinity; codey says what is wrong.
    }
  }
  if (model.endsWith(':latest')) model = model.slice(0, -7);  // Ollama's default tag
  r.variables.codey_model = model.length <= 256 ? model : '';
  r.internalRedirect('@codey_model');
}

export default { route };
