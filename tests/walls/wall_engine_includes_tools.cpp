// Must not compile: the engine knows nothing of reports (qmpp_tools sits above it).
#include "qmpp/engine.h"
#include "qmpp/report.h"
