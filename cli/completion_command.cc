// ferry completion bash|zsh|fish: shell completion scripts made from the
// command tree itself, so they never fall behind the commands.

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/exit_codes.h"

namespace ferry::cli {
namespace {

struct Node {
  std::vector<std::string> subcommands;
  std::vector<std::string> options;
};

void Walk(const CLI::App* app, const std::string& path, std::map<std::string, Node>& out) {
  Node& n = out[path];
  for (const CLI::Option* o : app->get_options()) {
    for (const std::string& l : o->get_lnames()) n.options.push_back("--" + l);
    for (const std::string& s : o->get_snames()) n.options.push_back("-" + s);
  }
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    n.subcommands.push_back(sub->get_name());
    Walk(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
  }
}

std::string Bash(const std::map<std::string, Node>& tree) {
  std::string s =
      "# ferry completion for bash: source <(ferry completion bash)\n"
      "declare -A __ferry_subs=(\n";
  for (const auto& [path, n] : tree) absl::StrAppend(&s, "  [\"", path, "\"]=\"", absl::StrJoin(n.subcommands, " "), "\"\n");
  s += ")\ndeclare -A __ferry_opts=(\n";
  for (const auto& [path, n] : tree) absl::StrAppend(&s, "  [\"", path, "\"]=\"", absl::StrJoin(n.options, " "), "\"\n");
  s += R"SH()
_ferry() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    if [[ " ${__ferry_subs[$path]} " == *" $w "* ]]; then path=${path:+$path }$w; fi
  done
  case "$prev" in
    --context) COMPREPLY=($(compgen -W "$(ferry context list -o json 2>/dev/null | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')" -- "$cur")); return ;;
    -o|--output) COMPREPLY=($(compgen -W "table wide json yaml" -- "$cur")); return ;;
    --color) COMPREPLY=($(compgen -W "auto always never" -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "${__ferry_opts[$path]} ${__ferry_opts[""]}" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "${__ferry_subs[$path]}" -- "$cur"))
  fi
}
complete -F _ferry ferry
)SH";
  return s;
}

std::string Fish(const std::map<std::string, Node>& tree) {
  std::string s = R"SH(# ferry completion for fish: ferry completion fish > ~/.config/fish/completions/ferry.fish
function __ferry_path
  set -l subs
)SH";
  for (const auto& [path, n] : tree) {
    absl::StrAppend(&s, "  set -a subs '", path, "=", absl::StrJoin(n.subcommands, " "), "'\n");
  }
  s += R"SH(  set -l path ''
  for w in (commandline -opc)[2..-1]
    string match -q -- '-*' $w; and continue
    for entry in $subs
      set -l kv (string split -m1 = $entry)
      if test "$kv[1]" = "$path"; and contains -- $w (string split ' ' $kv[2])
        if test -z "$path"; set path $w; else; set path "$path $w"; end
        break
      end
    end
  end
  echo $path
end
complete -c ferry -f
)SH";
  for (const auto& [path, n] : tree) {
    for (const std::string& sub : n.subcommands) {
      absl::StrAppend(&s, "complete -c ferry -n 'test (__ferry_path) = \"", path, "\"' -a '", sub, "'\n");
    }
    for (const std::string& o : n.options) {
      if (o.rfind("--", 0) == 0) {
        absl::StrAppend(&s, "complete -c ferry -n 'test (__ferry_path) = \"", path, "\"' -l '", o.substr(2), "'\n");
      }
    }
  }
  return s;
}

absl::Status Completion(CliState& state, const CLI::App* root, const std::string& shell) {
  std::map<std::string, Node> tree;
  Walk(root, "", tree);
  if (shell == "bash") {
    std::fputs(Bash(tree).c_str(), stdout);
  } else if (shell == "zsh") {
    std::fputs(absl::StrCat("# ferry completion for zsh: source <(ferry completion zsh)\n",
                            "autoload -U +X bashcompinit && bashcompinit\n", Bash(tree))
                   .c_str(),
               stdout);
  } else if (shell == "fish") {
    std::fputs(Fish(tree).c_str(), stdout);
  } else {
    return UsageError(absl::StrCat("ferry completion ", shell, ": use bash, zsh or fish"));
  }
  (void)state;
  return absl::OkStatus();
}

}  // namespace

void AddCompletionCommand(CLI::App& app, CliState& state) {
  auto shell = std::make_shared<std::string>();
  const CLI::App* root = &app;
  Leaf(app, state, "completion", "Print a shell completion script (bash, zsh, fish)",
       "  source <(ferry completion bash)        # in ~/.bashrc\n"
       "  source <(ferry completion zsh)         # in ~/.zshrc\n"
       "  ferry completion fish > ~/.config/fish/completions/ferry.fish\n",
       [&state, root, shell] { return Completion(state, root, *shell); })
      ->add_option("shell", *shell, "bash, zsh or fish")
      ->required();
}

}  // namespace ferry::cli
