# datasafe's shared engine. Modules import it as ansible.module_utils.datasafe.<name>;
# tests and bin/datasafe-guard put this directory on ansible.module_utils' search path.
