//! Members who find their room as the browser does: through aux-srv
//! (`PUT /api/rooms/{room}`), then on the backend its answer names.

use serde_json::Value;

use crate::aux::TestAux;
use crate::ws::WsClient;

impl TestAux {
    /// Opens `room` (creating it if nobody has) and joins it as `nick`;
    /// returns the client and its `welcome`.
    pub async fn member(&self, room: &str, nick: &str) -> (WsClient, Value) {
        let opened = self.put_room(room).await;
        assert!(matches!(opened.status, 200 | 201), "{room}: {}", opened.body);
        WsClient::joined(opened.json()["ws_url"].as_str().unwrap(), nick).await
    }
}
