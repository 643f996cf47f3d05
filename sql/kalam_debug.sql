--
-- kalam_debug: the developer-only hooks are refused unless
-- kalam.debug_enable_hooks is on (it is off here); only superusers may
-- call them (t/010_bad_commands.pl uses them)
--
SHOW kalam.debug_enable_hooks;
\set VERBOSITY default
SELECT kalam.debug_propose(1, '\x00');
\set VERBOSITY terse
CREATE ROLE kalam_debug_nobody;
SET ROLE kalam_debug_nobody;
SELECT kalam.debug_propose(1, '\x00');
RESET ROLE;
DROP ROLE kalam_debug_nobody;
