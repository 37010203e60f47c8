// Must not compile: the readers know nothing of the checks (qmpp_tools sits above io).
#include "qmpp/io.h"
#include "qmpp/check.h"
