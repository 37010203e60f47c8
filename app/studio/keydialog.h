// Choosing the tensors of a .safetensors file: which one holds the tokens, and which (if any)
// the hidden states and the attention maps. The studio remembers the choice per file.
#pragma once

#include "qmpp/inputs.h"

#include <QDialog>

#include <vector>

class QComboBox;
class QCheckBox;
class QLabel;
class QPushButton;

namespace studio {

struct TensorKeys {
    QString tokens, hidden, attention; // empty hidden/attention: none
    bool operator==(const TensorKeys& o) const {
        return tokens == o.tokens && hidden == o.hidden && attention == o.attention;
    }
};

// The keys that go without asking: the only tensor, or "tokens"; "hidden_states" and
// "attentions" when their shapes fit the tokens. `ambiguous` is set when the tokens cannot be
// told apart (several candidates and none named "tokens").
TensorKeys defaultTensorKeys(const std::vector<qmpp::TensorInfo>& tensors, bool& ambiguous);
// Whether `keys` names tensors of the file with shapes that fit together (remembered choices
// of a file that has changed since are asked again).
bool tensorKeysFit(const std::vector<qmpp::TensorInfo>& tensors, const TensorKeys& keys,
                   QString* why = nullptr);

class TensorKeysDialog : public QDialog {
    Q_OBJECT
  public:
    TensorKeysDialog(const QString& file, const std::vector<qmpp::TensorInfo>& tensors,
                     const TensorKeys& initial, QWidget* parent = nullptr);
    TensorKeys keys() const;
    bool remember() const;

    QComboBox* tokensBox() const { return m_tokens; }
    QComboBox* hiddenBox() const { return m_hidden; }
    QComboBox* attentionBox() const { return m_attention; }

  private:
    void validate();

    std::vector<qmpp::TensorInfo> m_tensors;
    QComboBox *m_tokens, *m_hidden, *m_attention;
    QCheckBox* m_remember;
    QLabel* m_problem;
    QPushButton* m_ok = nullptr;
};

} // namespace studio
