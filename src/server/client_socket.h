// The connection behind an HTTP request, for a handler that waits (a non-streaming generation)
// and must notice when its client goes away: nothing is written to the socket before the answer,
// so a write cannot reveal it as it does for streams.
#pragma once

#include <httplib.h>

namespace whale {

// The socket of the request's connection, found among this process's descriptors by its two
// addresses (httplib 0.11 gives handlers no access to it); -1 when none matches. The handler's
// thread holds the connection open while it runs, so the descriptor cannot be reused meanwhile.
int ConnectionSocket(const httplib::Request& req);

// The client closed its end (or the connection broke); does not block. A client that only shuts
// down its sending side while it waits for the answer looks the same; HTTP clients do not do that.
bool PeerClosed(int socket);

}  // namespace whale
